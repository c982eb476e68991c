import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "./measure.ts";
import { spawnCollect } from "./measure.ts";

export type Op = "full" | "incremental" | "nochange" | "restore" | "verify";

/** One round of one tool on one dataset: where the data is and where this tool may write. */
export interface Ctx {
  /** The dataset folder (the source of every backup). */
  source: string;
  /** This tool's own folder for this round (repositories, archives, copies). */
  store: string;
  /** Extra options: whether to profile bsched, and where. */
  cpuProfDir?: string;
}

/** What to time, and how to read the result. */
export interface Step {
  cmd: Command;
  /** Paths whose growth is what this step stored (default: the tool's store). */
  measure?: string[];
}

export interface Tool {
  /** Row label per operation (the default is `name`). */
  name: string;
  labels?: Partial<Record<Op, string>>;
  ops: Partial<Record<Op, (c: Ctx, target?: string) => Promise<Step>>>;
}

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
let BSCHED = path.join(ROOT, "bin", "bsched.js");

/** Measure the bsched of another checkout (a folder holding bin/bsched.js), e.g. an older commit. */
export function switchBschedCheckout(dir: string): void {
  BSCHED = path.join(path.resolve(dir), "bin", "bsched.js");
}

export function bschedBin(): string {
  return BSCHED;
}

// ---------------------------------------------------------------------------------------------
// bsched, run as the real CLI under the project's Node.

export function argvOf(c: Ctx, args: string[], bin = BSCHED): string[] {
  const prof = c.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${c.cpuProfDir}`] : [];
  return [process.execPath, ...prof, bin, ...args, "--config", path.join(c.store, "bsched.yaml"), "--json"];
}

export async function writeConfig(c: Ctx, type: "separate" | "compressed"): Promise<void> {
  await fs.mkdir(c.store, { recursive: true });
  const yaml = [
    "server:",
    `  root: ${JSON.stringify(c.source)}`,
    // The catalog must not land inside the source it backs up (its default is <root>/.bsched).
    `  state: ${JSON.stringify(path.join(c.store, "state"))}`,
    "  timezone: UTC",
    "sets:",
    "  bench:",
    "    letter: B",
    `    source: ${JSON.stringify(c.source)}`,
    `    folder: ${JSON.stringify(path.join(c.store, "backups"))}`,
    `    type: ${type}`,
    "    mode: full",
    "    frequency: now",
    "",
  ].join("\n");
  await fs.writeFile(path.join(c.store, "bsched.yaml"), yaml);
}

/**
 * bsched of this build, or with `other` the bsched of another checkout (a folder holding
 * bin/bsched.js), measured in the same rounds as this one: its rows are `bsched TYPE @LABEL`.
 */
export function bsched(type: "separate" | "compressed", other?: { dir: string; label: string }): Tool {
  const bin = other ? path.join(path.resolve(other.dir), "bin", "bsched.js") : undefined;
  const bschedArgv = (c: Ctx, args: string[]) => argvOf(c, args, bin);
  const backups = (c: Ctx) => [path.join(c.store, "backups")];
  const ops: Tool["ops"] = {
    full: async (c) => {
      await writeConfig(c, type);
      return {
        cmd: { kind: "exec", argv: bschedArgv(c, ["backup", "bench", "--mode", "full"]) },
        measure: backups(c),
      };
    },
  };
  {
    const incr = async (c: Ctx): Promise<Step> => ({
      cmd: { kind: "exec", argv: bschedArgv(c, ["backup", "bench", "--mode", "incremental"]) },
      measure: backups(c),
    });
    ops.incremental = incr;
    ops.nochange = incr;
    ops.restore = async (c, target) => ({
      cmd: { kind: "exec", argv: bschedArgv(c, ["restore", "bench", "--to", target as string]) },
      measure: [],
    });
    ops.verify = async (c) => ({
      cmd: { kind: "exec", argv: bschedArgv(c, ["verify", "bench"]) },
      measure: [],
    });
  }
  return { name: other ? `bsched ${type} @${other.label}` : `bsched ${type}`, ops };
}

/** Whether this bsched makes `--type compressed` backups (the type is being built). */
export async function bschedHasCompressed(tmp: string): Promise<boolean> {
  const c: Ctx = { source: path.join(tmp, "probe-src"), store: path.join(tmp, "probe-store") };
  await fs.rm(c.source, { recursive: true, force: true });
  await fs.rm(c.store, { recursive: true, force: true });
  await fs.mkdir(c.source, { recursive: true });
  await fs.writeFile(path.join(c.source, "probe.txt"), "probe\n");
  await writeConfig(c, "compressed");
  const argv = argvOf(c, ["backup", "bench", "--type", "compressed"]);
  const r = await spawnCollect(argv[0] as string, argv.slice(1));
  await fs.rm(c.source, { recursive: true, force: true });
  await fs.rm(c.store, { recursive: true, force: true });
  return r.code === 0;
}

// ---------------------------------------------------------------------------------------------
// Peers.

export const cpA: Tool = {
  name: "cp -a",
  ops: {
    full: async (c) => {
      await fs.mkdir(c.store, { recursive: true });
      return { cmd: { kind: "exec", argv: ["cp", "-a", c.source, path.join(c.store, "copy")] } };
    },
  },
};

/** rsync -a for the full copy; rsync --link-dest onto the previous copy for the incrementals. */
export const rsync: Tool = {
  name: "rsync -a",
  labels: { incremental: "rsync --link-dest", nochange: "rsync --link-dest" },
  ops: {
    full: async (c) => {
      await fs.mkdir(c.store, { recursive: true });
      return { cmd: { kind: "exec", argv: ["rsync", "-a", `${c.source}/`, `${path.join(c.store, "0")}/`] } };
    },
    incremental: async (c) => linkDest(c, "0", "1"),
    nochange: async (c) => linkDest(c, "1", "2"),
  },
};

function linkDest(c: Ctx, prev: string, next: string): Step {
  return {
    cmd: {
      kind: "exec",
      argv: [
        "rsync",
        "-a",
        "--delete",
        `--link-dest=${path.join(c.store, prev)}`,
        `${c.source}/`,
        `${path.join(c.store, next)}/`,
      ],
    },
  };
}

/** `tar -c` of the source piped into a compressor command that writes `file` in the store. */
function tarInto(name: string, file: string, compressor: (out: string) => string[]): Tool {
  return {
    name,
    ops: {
      full: async (c) => {
        await fs.mkdir(c.store, { recursive: true });
        return {
          cmd: {
            kind: "pipe",
            parts: [["tar", "-C", c.source, "-cf", "-", "."], compressor(path.join(c.store, file))],
          },
        };
      },
    },
  };
}

export const tarZstd = tarInto("tar | zstd -3 -T0", "full.tar.zst", (out) => [
  "zstd",
  "-3",
  "-T0",
  "-q",
  "-o",
  out,
]);
export const tarPigz = tarInto("tar | pigz", "full.tar.gz", (out) => ["bash", "-c", `exec pigz > '${out}'`]);

/** GNU tar's own incrementals: level 0, then each level on a copy of the previous snapshot file. */
export const tarIncremental: Tool = {
  name: "tar --listed-incremental",
  ops: {
    full: async (c) => {
      await fs.mkdir(c.store, { recursive: true });
      return { cmd: tarLevel(c, 0) };
    },
    incremental: async (c) => {
      await fs.copyFile(path.join(c.store, "snar.0"), path.join(c.store, "snar.1"));
      return { cmd: tarLevel(c, 1) };
    },
    nochange: async (c) => {
      await fs.copyFile(path.join(c.store, "snar.1"), path.join(c.store, "snar.2"));
      return { cmd: tarLevel(c, 2) };
    },
    restore: async (c, target) => {
      await fs.mkdir(target as string, { recursive: true });
      return {
        cmd: {
          kind: "seq",
          parts: [0, 1, 2].map((l) => [
            "tar",
            "-C",
            target as string,
            "--listed-incremental=/dev/null",
            "-xf",
            path.join(c.store, `level${l}.tar`),
          ]),
        },
        measure: [],
      };
    },
  },
};

function tarLevel(c: Ctx, level: number): Command {
  return {
    kind: "exec",
    argv: [
      "tar",
      "-C",
      c.source,
      `--listed-incremental=${path.join(c.store, `snar.${level}`)}`,
      "-cf",
      path.join(c.store, `level${level}.tar`),
      ".",
    ],
  };
}

function resticEnv(c: Ctx): Record<string, string> {
  return {
    RESTIC_REPOSITORY: path.join(c.store, "repo"),
    RESTIC_PASSWORD_FILE: path.join(c.store, "password"),
    RESTIC_CACHE_DIR: path.join(c.store, "cache"),
  };
}

export const restic: Tool = {
  name: "restic",
  labels: { verify: "restic check --read-data" },
  ops: {
    full: async (c) => {
      await fs.mkdir(c.store, { recursive: true });
      await fs.writeFile(path.join(c.store, "password"), "bench-password\n");
      const r = await spawnCollect("restic", ["init", "-q"], { env: resticEnv(c) });
      if (r.code !== 0) throw new Error(`restic init failed: ${r.stderr}`);
      return resticBackup(c);
    },
    incremental: async (c) => resticBackup(c),
    nochange: async (c) => resticBackup(c),
    restore: async (c, target) => ({
      cmd: {
        kind: "exec",
        argv: ["restic", "restore", "latest", "-q", "--target", target as string],
        env: resticEnv(c),
      },
      measure: [],
    }),
    verify: async (c) => ({
      cmd: { kind: "exec", argv: ["restic", "check", "-q", "--read-data"], env: resticEnv(c) },
      measure: [],
    }),
  },
};

function resticBackup(c: Ctx): Step {
  return {
    cmd: { kind: "exec", argv: ["restic", "backup", "-q", "."], cwd: c.source, env: resticEnv(c) },
    measure: [path.join(c.store, "repo")],
  };
}

function borgEnv(c: Ctx): Record<string, string> {
  return {
    BORG_REPO: path.join(c.store, "repo"),
    BORG_BASE_DIR: path.join(c.store, "base"),
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: "yes",
    BORG_RELOCATED_REPO_ACCESS_IS_OK: "yes",
  };
}

export const borg: Tool = {
  name: "borg (lz4)",
  labels: { restore: "borg extract", verify: "borg check --verify-data" },
  ops: {
    full: async (c) => {
      await fs.mkdir(c.store, { recursive: true });
      const r = await spawnCollect("borg", ["init", "-e", "none"], { env: borgEnv(c) });
      if (r.code !== 0) throw new Error(`borg init failed: ${r.stderr}`);
      return borgCreate(c, "a0");
    },
    incremental: async (c) => borgCreate(c, "a1"),
    nochange: async (c) => borgCreate(c, "a2"),
    restore: async (c, target) => {
      await fs.mkdir(target as string, { recursive: true });
      return {
        cmd: { kind: "exec", argv: ["borg", "extract", "::a2"], cwd: target, env: borgEnv(c) },
        measure: [],
      };
    },
    verify: async (c) => ({
      cmd: { kind: "exec", argv: ["borg", "check", "--verify-data"], env: borgEnv(c) },
      measure: [],
    }),
  },
};

function borgCreate(c: Ctx, archive: string): Step {
  return {
    cmd: {
      kind: "exec",
      argv: ["borg", "create", "--compression", "lz4", `::${archive}`, "."],
      cwd: c.source,
      env: borgEnv(c),
    },
    measure: [path.join(c.store, "repo")],
  };
}

/** The peers' versions, for the results file. */
export async function peerVersions(): Promise<Record<string, string>> {
  const probes: [string, string[]][] = [
    ["rsync", ["--version"]],
    ["tar", ["--version"]],
    ["zstd", ["--version"]],
    ["pigz", ["--version"]],
    ["restic", ["version"]],
    ["borg", ["--version"]],
    ["cp", ["--version"]],
  ];
  const out: Record<string, string> = {};
  for (const [bin, args] of probes) {
    const r = await spawnCollect(bin, args).catch(() => undefined);
    out[bin] = `${r?.stdout ?? ""}${r?.stderr ?? ""}`.split("\n")[0]?.trim() || "missing";
  }
  return out;
}
