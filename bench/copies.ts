/**
 * The copy benchmark (issue 11): one backup of dataset A copied off the machine to each kind of
 * server on loopback — OpenSSH (sftp), Samba (smb), Ceph's S3 gateway (s3) — by `bsched copy`,
 * beside `rclone copy` of the same backup folder to the same server, alternated A B A B.
 * `npm run bench:copies [-- --runs N] [--scale S] [--kinds sftp,smb,s3] [--dir DIR] [--type separate|compressed]
 *   [--out FILE] [--profile DIR] [--rclone-transfers N] [--verify checksum,read,size] [--transfers 1,4]`.
 * The servers are the tests' own (test/helpers/servers/): started here, stopped at the end.
 *
 * One bsched row per kind and `--verify` mode (default `checksum,size`): `checksum` (the default:
 * each file hashed as sent, then the server's own check where it has one, read back where not),
 * `read` (every copied byte read back from the server and hashed) and `size` (sizes checked, as
 * rclone checks sizes and, where the server offers one, a hash). rclone is the peer: `rclone copy`
 * with its defaults. `--transfers 1,4`: one bsched row per mode and number of files sent at once
 * (the destinations' `transfers`; without it, their default).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type Ceph, startCeph } from "../test/helpers/servers/ceph.ts";
import { type SmbServer, startSmbd } from "../test/helpers/servers/smbd.ts";
import { type SshdServer, startSshd } from "../test/helpers/servers/sshd.ts";
import { generateA, listTree } from "./datasets.ts";
import { type Command, measure, median, run, spawnCollect } from "./measure.ts";
import { fmtBytes } from "./report.ts";

const REPO = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const BIN = path.join(REPO, "bin", "bsched.js");
const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    scale: { type: "string", default: "1" },
    kinds: { type: "string", default: "sftp,smb,s3" },
    dir: { type: "string", default: path.join(os.tmpdir(), "bsched-bench-copies") },
    type: { type: "string", default: "separate" },
    out: { type: "string" },
    profile: { type: "string" },
    "rclone-transfers": { type: "string" },
    verify: { type: "string", default: "checksum,size" },
    transfers: { type: "string" },
  },
});
const runs = Number(args.runs);
const scale = Number(args.scale);
const kinds = (args.kinds as string).split(",") as Kind[];
const dir = path.resolve(args.dir as string);
const type = args.type as "separate" | "compressed";
/** `--profile DIR`: bsched's commands run with `node --cpu-prof` writing there (read with bench/profile-summary.ts). */
const NODE = args.profile
  ? [process.execPath, "--cpu-prof", "--cpu-prof-dir", path.resolve(args.profile as string)]
  : [process.execPath];
const RCLONE_EXTRA = args["rclone-transfers"] ? ["--transfers", args["rclone-transfers"] as string] : [];
const modes = (args.verify as string).split(",") as VerifyMode[];
/** Each bsched variant: a verify mode and, when `--transfers` lists them, a number of transfers. */
interface Variant {
  verify: VerifyMode;
  transfers: number | undefined;
  id: string;
  label: string;
}
const variants = modes.flatMap((verify): Variant[] =>
  args.transfers === undefined
    ? [{ verify, transfers: undefined, id: verify, label: `verify: ${verify}` }]
    : (args.transfers as string).split(",").map((t) => ({
        verify,
        transfers: Number(t),
        id: `${verify}-t${t}`,
        label: `verify: ${verify}, transfers ${t}`,
      })),
);
const log = (s: string) => process.stderr.write(`${s}\n`);

type Kind = "sftp" | "smb" | "s3";
type VerifyMode = "checksum" | "read" | "size";

interface Servers {
  sftp?: SshdServer;
  smb?: SmbServer;
  s3?: Ceph & { address: { conf: string } };
}

/** One kind's destination entries (read and size variants) and the rclone remote for the same place. */
interface Target {
  kind: Kind;
  yaml(name: string, verify: VerifyMode): string[];
  rcloneEnv: Record<string, string>;
  /** The rclone path of the folder that holds backups. */
  rclonePath: string;
  /** Empty the place between measurements. */
  clear(): Promise<void>;
}

async function targets(servers: Servers): Promise<Target[]> {
  const out: Target[] = [];
  const emptyDir = async (d: string) => {
    for (const n of await fs.readdir(d)) await fs.rm(path.join(d, n), { recursive: true, force: true });
  };
  if (servers.sftp) {
    const s = servers.sftp;
    out.push({
      kind: "sftp",
      yaml: (name, verify) => [
        `  ${name}:`,
        "    type: sftp",
        `    host: ${s.host}`,
        `    port: ${s.port}`,
        `    user: ${s.user}`,
        `    privateKey: ${JSON.stringify(s.privateKeyFile)}`,
        `    hostKey: ${JSON.stringify(s.hostKeyFingerprint)}`,
        `    path: ${JSON.stringify(s.dir)}`,
        `    verify: ${verify}`,
      ],
      rcloneEnv: {
        RCLONE_CONFIG_R_TYPE: "sftp",
        RCLONE_CONFIG_R_HOST: s.host,
        RCLONE_CONFIG_R_PORT: String(s.port),
        RCLONE_CONFIG_R_USER: s.user,
        RCLONE_CONFIG_R_KEY_FILE: s.privateKeyFile,
      },
      rclonePath: `r:${s.dir}`,
      clear: () => emptyDir(s.dir),
    });
  }
  if (servers.smb) {
    const s = servers.smb;
    const obscured = (await run("rclone", ["obscure", "-"], { input: s.password })).trim();
    const [, host, share] = /^\/\/([^/]+)\/(.+)$/.exec(s.share) ?? [];
    out.push({
      kind: "smb",
      yaml: (name, verify) => [
        `  ${name}:`,
        "    type: smb",
        `    share: ${JSON.stringify(s.share)}`,
        `    port: ${s.port}`,
        "    login: service",
        `    verify: ${verify}`,
      ],
      rcloneEnv: {
        RCLONE_CONFIG_R_TYPE: "smb",
        RCLONE_CONFIG_R_HOST: host as string,
        RCLONE_CONFIG_R_PORT: String(s.port),
        RCLONE_CONFIG_R_USER: s.user,
        RCLONE_CONFIG_R_PASS: obscured,
        RCLONE_CONFIG_R_DOMAIN: s.domain,
      },
      rclonePath: `r:${share}`,
      clear: () => emptyDir(s.dir),
    });
  }
  if (servers.s3) {
    const c = servers.s3;
    const bucket = await c.newBucket();
    const t: Target = {
      kind: "s3",
      yaml: (name, verify) => [
        `  ${name}:`,
        "    type: s3",
        `    endpoint: ${c.endpoint}`,
        `    bucket: ${bucket}`,
        `    region: ${c.region}`,
        "    accessKeyId: secret:s3-id",
        "    secretAccessKey: secret:s3-key",
        `    verify: ${verify}`,
      ],
      rcloneEnv: {
        RCLONE_CONFIG_R_TYPE: "s3",
        RCLONE_CONFIG_R_PROVIDER: "Ceph",
        RCLONE_CONFIG_R_ENDPOINT: c.endpoint,
        RCLONE_CONFIG_R_ACCESS_KEY_ID: c.accessKeyId,
        RCLONE_CONFIG_R_SECRET_ACCESS_KEY: c.secretAccessKey,
        RCLONE_CONFIG_R_FORCE_PATH_STYLE: "true",
        RCLONE_CONFIG_R_REGION: c.region,
        // rclone fails on a CA bundle for an http:// endpoint (see TEST-NOTES.md): none for it.
        AWS_CA_BUNDLE: "",
      },
      rclonePath: `r:${bucket}`,
      // Every object deleted, the bucket kept (the config names it): the OSD keeps objects in
      // memory (memstore), a few full copies left behind would fill it.
      // Deleted objects' data is freed by radosgw's garbage collector, hours later by default: run it now.
      async clear() {
        await run("rclone", ["delete", `r:${bucket}`], { env: t.rcloneEnv });
        await run("radosgw-admin", ["-c", c.address.conf, "gc", "process", "--include-all"]);
      },
    };
    out.push(t);
  }
  return out;
}

interface Row {
  kind: Kind;
  tool: string;
  seconds: number[];
  rssMb: number[];
}

/** What one copy must leave on the server: the backup folder's file count and bytes. */
interface Expected {
  count: number;
  bytes: number;
}

/** Check, with rclone's own listing, that the copy is whole on the server (a fast run that copied nothing proves nothing). */
async function reached(t: Target, name: string, want: Expected): Promise<void> {
  const got = JSON.parse(
    await run("rclone", ["size", "--json", `${t.rclonePath}/${name}`], { env: t.rcloneEnv }),
  ) as {
    count: number;
    bytes: number;
  };
  if (got.count !== want.count || got.bytes !== want.bytes) {
    throw new Error(
      `${t.kind}: the server holds ${got.count} files, ${got.bytes} bytes of ${name}; expected ${want.count}, ${want.bytes}`,
    );
  }
}

async function main(): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const servers: Servers = {};
  try {
    log("starting servers…");
    if (kinds.includes("sftp")) servers.sftp = await startSshd();
    if (kinds.includes("smb")) servers.smb = await startSmbd();
    if (kinds.includes("s3")) servers.s3 = await startCeph();
    const root = path.join(dir, "srv");
    const data = path.join(root, "A");
    log(`dataset A at scale ${scale}…`);
    await generateA(data, scale);
    const tree = await listTree(data);
    const bytes = tree.files.reduce((n, f) => n + f.size, 0);
    const info = `${tree.files.length} files, ${fmtBytes(bytes)}`;
    log(`  ${info}`);
    const ts = await targets(servers);
    const config = path.join(dir, "bsched.yaml");
    const yaml = [
      "server:",
      `  root: ${JSON.stringify(root)}`,
      `  state: ${JSON.stringify(path.join(dir, "state"))}`,
      "  timezone: UTC",
      ...(servers.smb
        ? [
            "  serviceLogin:",
            `    domain: ${servers.smb.domain}`,
            `    user: ${servers.smb.user}`,
            "    password: secret:service",
          ]
        : []),
      "destinations:",
      ...ts.flatMap((t) =>
        variants.flatMap((v) => [
          ...t.yaml(`${t.kind}-${v.id}`, v.verify),
          ...(v.transfers === undefined ? [] : [`    transfers: ${v.transfers}`]),
        ]),
      ),
      "sets:",
      "  a:",
      "    letter: A",
      "    source: A",
      `    folder: ${JSON.stringify(path.join(dir, "Backup"))}`,
      `    type: ${type}`,
      "    mode: full",
      "    frequency: now",
      "",
    ].join("\n");
    await fs.writeFile(config, yaml);
    const cli = (a: string[], input?: string) =>
      run(process.execPath, [BIN, ...a, "--config", config], input === undefined ? {} : { input });
    if (servers.smb) await cli(["secret", "set", "service", "--stdin"], servers.smb.password);
    if (servers.s3) {
      await cli(["secret", "set", "s3-id", "--stdin"], servers.s3.accessKeyId);
      await cli(["secret", "set", "s3-key", "--stdin"], servers.s3.secretAccessKey);
    }
    log("the backup to copy…");
    const summary = JSON.parse(await cli(["backup", "a", "--json"])) as { name: string };
    const backupDir = path.join(dir, "Backup", summary.name);
    const backupTree = await listTree(backupDir);
    const tree0: Expected = {
      count: backupTree.files.length,
      bytes: backupTree.files.reduce((n, f) => n + f.size, 0),
    };
    log(`  backup ${summary.name}: ${tree0.count} files, ${fmtBytes(tree0.bytes)}`);
    const tmp = path.join(dir, "time");
    await fs.mkdir(tmp, { recursive: true });
    const loadBefore = os.loadavg()[0] as number;
    const rows: Row[] = [];
    const record = (kind: Kind, tool: string, m: { seconds: number; peakRssMb: number }) => {
      let r = rows.find((x) => x.kind === kind && x.tool === tool);
      if (!r) {
        r = { kind, tool, seconds: [], rssMb: [] };
        rows.push(r);
      }
      r.seconds.push(m.seconds);
      r.rssMb.push(m.peakRssMb);
    };
    for (let round = 0; round < runs; round++) {
      for (const t of ts) {
        const cmds: [string, Command][] = [
          ...variants.map((v): [string, Command] => [
            `bsched copy (${v.label})`,
            {
              kind: "exec",
              argv: [...NODE, BIN, "copy", "a", "--to", `${t.kind}-${v.id}`, "--config", config],
            },
          ]),
          [
            "rclone copy",
            {
              kind: "exec",
              // `--rclone-transfers 1`: one file at a time, as bsched copies (rclone's default is 4).
              argv: ["rclone", "copy", ...RCLONE_EXTRA, backupDir, `${t.rclonePath}/${summary.name}`],
              env: t.rcloneEnv,
            },
          ],
        ];
        // Alternate: each round starts with the next tool.
        for (let i = 0; i < cmds.length; i++) {
          const [tool, cmd] = cmds[(i + round) % cmds.length] as [string, Command];
          await t.clear();
          const m = await measure(cmd, { tmp });
          await reached(t, summary.name, tree0);
          log(
            `  round ${round + 1} ${t.kind} ${tool}: ${m.seconds.toFixed(2)} s, ${m.peakRssMb.toFixed(0)} MB`,
          );
          record(t.kind, tool, m);
        }
      }
    }
    const lines = [
      `# Copies off the machine: bsched copy vs rclone copy (${new Date().toISOString().slice(0, 10)})`,
      "",
      `Dataset A at scale ${scale} (${info}), one ${type} full backup, copied to servers on loopback`,
      `(OpenSSH sshd, Samba smbd, Ceph radosgw with a memstore OSD), ${runs} round(s), tools alternated.`,
      `rclone ${(await spawnCollect("rclone", ["version"])).stdout.split("\n")[0]}; ${os.cpus().length} cores, load average`,
      `${loadBefore.toFixed(1)} before the rounds and ${(os.loadavg()[0] as number).toFixed(1)} after (a shared machine: compare ratios, not seconds).`,
      "",
      ...(RCLONE_EXTRA.length ? [`rclone ran with ${RCLONE_EXTRA.join(" ")}.`, ""] : []),
      "| kind | tool | median s | min–max s | ratio to rclone | peak RSS MB |",
      "|---|---|---|---|---|---|",
    ];
    for (const t of ts) {
      const peer = rows.find((r) => r.kind === t.kind && r.tool === "rclone copy");
      for (const r of rows.filter((x) => x.kind === t.kind)) {
        const ratio = peer ? median(r.seconds) / median(peer.seconds) : Number.NaN;
        lines.push(
          `| ${r.kind} | ${r.tool} | ${median(r.seconds).toFixed(2)} | ${Math.min(...r.seconds).toFixed(2)}–${Math.max(...r.seconds).toFixed(2)} | ${ratio.toFixed(2)}× | ${Math.max(...r.rssMb).toFixed(0)} |`,
        );
      }
    }
    const text = `${lines.join("\n")}\n`;
    process.stdout.write(text);
    if (args.out) await fs.writeFile(args.out as string, text);
  } finally {
    await servers.sftp?.close().catch(() => undefined);
    await servers.smb?.cleanup().catch(() => undefined);
    await servers.s3?.stop().catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

await main();
