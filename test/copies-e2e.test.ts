import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import type { CliResult } from "./helpers/cli.ts";
import { restoreOnFreshComputer } from "./helpers/fresh-restore.ts";
import { assertNoSecrets, filesUnder, sampleProcessList } from "./helpers/leaks.ts";
import { makeServer } from "./helpers/server.ts";
import { cephMissing, releaseCeph, sharedCeph } from "./helpers/servers/ceph.ts";
import { smbdMissing, startSmbd } from "./helpers/servers/smbd.ts";
import { sshdMissing, startSshd } from "./helpers/servers/sshd.ts";

after(() => releaseCeph());

/**
 * Issue 11, "Must show", through the CLI against real servers on loopback: a set with its folder
 * on the local disk and `copies: [nas, vault, offsite]` (Samba with the service login, OpenSSH,
 * Ceph's S3 gateway); a full and two incrementals, each copied and verified everywhere; each
 * destination restored alone on a "new computer" (a config naming only it, no catalog, no local
 * backup) exactly; one destination down for two runs, then caught up oldest first by the third;
 * and the leak hunt: no password or key in any output, the catalog, the config, the state folder
 * or the process list sampled throughout.
 */
test("copies off the machine, end to end: three kinds, exact restores from each alone, catch-up, no secret leaks", {
  timeout: 900_000,
}, async (t) => {
  const why = sshdMissing() ?? smbdMissing() ?? cephMissing();
  if (why) {
    t.skip(why);
    return;
  }
  const s = await makeServer({ prefix: "bsched-e2e-", setKeys: ["copies: [nas, vault, offsite]"] });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const sshd = await startSshd();
  t.after(() => sshd.close());
  const smb = await startSmbd();
  t.after(() => smb.cleanup());
  const ceph = await sharedCeph();
  const bucket = await ceph.newBucket();

  const privateKey = await fs.readFile(sshd.privateKeyFile, "utf8");
  // What must never show: each password and key, and the private key's body line by line.
  const secrets: Record<string, string> = {
    "the service login's password": smb.password,
    "the S3 secret key": ceph.secretAccessKey,
    ...Object.fromEntries(
      privateKey
        .split("\n")
        .filter((l) => l.length > 20 && !l.startsWith("-----"))
        .map((l, i) => [`line ${i + 1} of the SSH private key`, l]),
    ),
  };

  const config = await fs.readFile(s.config, "utf8");
  await fs.writeFile(
    s.config,
    `${config.replace(
      "  timezone: UTC\n",
      `  timezone: UTC
  serviceLogin: { domain: ${smb.domain}, user: ${smb.user}, password: "secret:service" }
`,
    )}destinations:
  nas: { type: smb, share: "${smb.share}", port: ${smb.port}, path: site1, login: service }
  vault:
    type: sftp
    host: ${sshd.host}
    port: ${sshd.port}
    user: ${sshd.user}
    privateKey: ${sshd.privateKeyFile}
    hostKey: "${sshd.hostKeyFingerprint}"
    path: ${sshd.dir}/backups
    attempts: 1
  offsite:
    type: s3
    endpoint: ${ceph.endpoint}
    bucket: ${bucket}
    prefix: site1
    region: ${ceph.region}
    accessKeyId: ${ceph.accessKeyId}
    secretAccessKey: "secret:offsite"
`,
  );

  const ps = sampleProcessList();
  const outputs: Record<string, string> = {};
  let step = 0;
  const cli = async (args: string[], input?: string): Promise<CliResult> => {
    const r = await s.cli(args, undefined, input);
    outputs[`stdout of bsched ${args.join(" ")} (#${++step})`] = r.stdout;
    outputs[`stderr of bsched ${args.join(" ")} (#${step})`] = r.stderr;
    return r;
  };
  const ok = (r: CliResult, what: string, code = 0) =>
    assert.equal(r.code, code, `${what} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  try {
    ok(await cli(["secret", "set", "service", "--stdin"], smb.password), "secret set service");
    ok(await cli(["secret", "set", "offsite", "--stdin"], ceph.secretAccessKey), "secret set offsite");

    const write = (rel: string, text: string) =>
      fs
        .mkdir(path.dirname(path.join(s.data, rel)), { recursive: true })
        .then(() => fs.writeFile(path.join(s.data, rel), text));
    await write("cardholders.db", "x".repeat(300_000));
    await write("events/2026.db", "e".repeat(2_000_000));
    await write("settings space 'quoted'.ini", "a=1\n");
    type Summary = {
      name: string;
      mode: string;
      copies: { destination: string; ok: boolean; copied: number; newest: string | null }[];
    };
    const backup = async (code = 0): Promise<Summary> => {
      const r = await cli(["backup", "data", "--json"]);
      ok(r, "backup", code);
      return JSON.parse(r.stdout) as Summary;
    };

    // A full and two incrementals, every copy made and verified.
    const made: Summary[] = [];
    made.push(await backup());
    await write("cardholders.db", "y".repeat(300_000));
    made.push(await backup());
    await write("events/2026.db", "f".repeat(2_100_000));
    await fs.rm(path.join(s.data, "settings space 'quoted'.ini"));
    made.push(await backup());
    assert.deepEqual(
      made.map((m) => m.mode),
      ["full", "incremental", "incremental"],
    );
    for (const m of made) {
      assert.deepEqual(m.copies.map((c) => [c.destination, c.ok, c.copied, c.newest]).sort(), [
        ["nas", true, 1, m.name],
        ["offsite", true, 1, m.name],
        ["vault", true, 1, m.name],
      ]);
    }
    for (const dest of ["nas", "vault", "offsite"]) {
      ok(await cli(["verify", "data", "--dest", dest]), `verify --dest ${dest}`);
      const listed = await cli(["list", "data", "--dest", dest, "--json"]);
      ok(listed, `list --dest ${dest}`);
      assert.deepEqual(
        (JSON.parse(listed.stdout) as { name: string }[]).map((b) => b.name),
        made.map((m) => m.name),
        `${dest} holds the three backups`,
      );
    }
    // Each destination alone restores the newest state exactly on a new computer.
    for (const dest of ["nas", "vault", "offsite"]) {
      const fresh = await restoreOnFreshComputer(s, dest);
      t.after(() => fs.rm(fresh.dir, { recursive: true, force: true }));
      outputs[`restore on a new computer from ${dest}`] = fresh.result.stdout + fresh.result.stderr;
      assert.equal(fresh.result.code, 0, fresh.result.stderr);
      assert.deepEqual(fresh.diffs, [], `restored from ${dest} alone`);
      assert.ok(!fresh.stateAfter.some((f) => f.startsWith("catalog")), "no catalog was needed");
    }

    // The catch-up: vault down for two runs (each a COPY_FAILED warning, exit 3, the others
    // copied), then up: the third run sends the two it missed and its own, oldest first.
    await sshd.stop();
    for (let i = 0; i < 2; i++) {
      await write("cardholders.db", `down ${i} `.repeat(30_000));
      const m = await backup(3);
      made.push(m);
      const vault = m.copies.find((c) => c.destination === "vault");
      assert.equal(vault?.ok, false);
      assert.deepEqual(
        m.copies
          .filter((c) => c.ok)
          .map((c) => c.destination)
          .sort(),
        ["nas", "offsite"],
      );
    }
    const warned = outputs[`stderr of bsched backup data --json (#${step})`] ?? "";
    assert.match(warned, /COPY_FAILED/);
    assert.match(warned, /vault/);
    await sshd.restart();
    await write("cardholders.db", "up again ".repeat(30_000));
    const third = await backup();
    made.push(third);
    const vault = third.copies.find((c) => c.destination === "vault");
    assert.equal(vault?.ok, true);
    assert.equal(vault?.copied, 3, "the two missed backups and the new one");
    const listed = await cli(["list", "data", "--dest", "vault", "--json"]);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { name: string }[]).map((b) => b.name),
      made.map((m) => m.name),
    );
    const fresh = await restoreOnFreshComputer(s, "vault");
    t.after(() => fs.rm(fresh.dir, { recursive: true, force: true }));
    assert.equal(fresh.result.code, 0, fresh.result.stderr);
    assert.deepEqual(fresh.diffs, [], "vault's caught-up chain restores exactly");

    const status = await cli(["status", "--json"]);
    ok(status, "status");
    const copies = (
      JSON.parse(status.stdout) as { sets: { copies: { destination: string; behind: number }[] }[] }
    ).sets[0]?.copies;
    assert.deepEqual(copies?.map((c) => [c.destination, c.behind]).sort(), [
      ["nas", 0],
      ["offsite", 0],
      ["vault", 0],
    ]);
    ok(await cli(["config", "show", "--json"]), "config show");
  } finally {
    outputs["the process list, sampled during the runs"] = await ps.stop();
  }

  // The leak hunt: every output above, the config, and every file of the state folder (the
  // catalog, its WAL, scratch space) but the encrypted store itself and its key.
  const config2 = await fs.readFile(s.config, "utf8");
  const state = await filesUnder(path.join(s.root, ".bsched"), (f) => /secrets\.json$|secret\.key$/.test(f));
  assert.ok(
    Object.keys(state).some((f) => f.endsWith("catalog.db")),
    "the catalog is among the files searched",
  );
  assertNoSecrets(secrets, { ...outputs, "the config": config2, ...state });
});
