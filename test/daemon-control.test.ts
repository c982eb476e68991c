import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { openCatalog } from "../src/catalog/reconcile.ts";
import { loadConfig } from "../src/config/load.ts";
import { runCli, tempDir } from "./helpers/cli.ts";
import { getJson } from "./helpers/control.ts";
import { killDaemons, startDaemon } from "./helpers/daemon-proc.ts";
import { waitFor } from "./helpers/live.ts";

/*
 * A manual `bsched backup` (the real CLI) while a daemon runs for the same state folder: it goes
 * through the daemon's control socket into the daemon's queue, so it never races the daemon's
 * scheduled run of the set; its output and exit code are those of a backup run in-process.
 */

after(() => killDaemons());

async function setup(prefix: string) {
  const dir = await tempDir(prefix);
  after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  await fs.writeFile(path.join(dir, "srv", "Data", "db.dat"), "cardholders");
  const gate = path.join(dir, "gate");
  const config = path.join(dir, "bsched.yaml");
  // The before-hook holds a run until `gate` exists (or the test's folder is gone).
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: UTC
sets:
  data:
    letter: D
    source: Data
    mode: full
    frequency: daily
    time: "04:00"
    keep: { last: 1 }
    hooks: { before: "while [ ! -e '${gate}' ] && [ -d '${dir}' ]; do sleep 0.05; done" }
`,
  );
  const slot = new Date();
  slot.setUTCDate(slot.getUTCDate() + 1);
  slot.setUTCHours(4, 0, 0, 0);
  const backups = path.join(dir, "srv", "Backup");
  return {
    dir,
    gate,
    config,
    slot: slot.getTime(),
    socket: path.join(dir, "srv", ".bsched", "daemon.sock"),
    cli: (args: string[]) => runCli([...args, "--config", config], { cwd: dir, timeoutMs: 300_000 }),
    listed: async () =>
      (await fs.readdir(backups).catch(() => [] as string[]))
        .filter((n) => /^D_\d{4}(_\d\d){5}(_\d+)?$/.test(n))
        .sort(),
  };
}

test("a manual CLI backup and the daemon's scheduled run of the set go through one queue: no overlap, both recorded, retention with the catalog", async () => {
  const s = await setup("bsched-control-");
  // The daemon's clock reads 3 s before the slot: its scheduled run starts, then waits in its hook.
  const daemon = startDaemon(s.config, s.dir, s.slot - 3000);
  await daemon.waitFor((l) => l.msg === "backup started" && l.trigger === "schedule");

  const manual = s.cli(["backup", "data", "--json"]);
  // The manual backup is in the daemon's queue, behind the running scheduled one (not failed LOCKED).
  await waitFor(
    "the queued manual run",
    async () => ((await getJson(s.socket, "/runs")) as unknown[]).length === 2,
    60_000,
  );
  const runs = (await getJson(s.socket, "/runs")) as { set: string; trigger: string }[];
  assert.deepEqual(runs.map((r) => [r.set, r.trigger]).sort(), [
    ["data", "manual"],
    ["data", "schedule"],
  ]);
  await fs.writeFile(s.gate, "");
  const r = await manual;
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { name: string; set: string; mode: string; files: number };
  assert.deepEqual([summary.set, summary.mode, summary.files], ["data", "full", 1]);
  assert.match(
    r.stderr,
    new RegExp(`the daemon \\(pid ${daemon.child.pid}\\) runs this backup in its queue`),
  );
  assert.doesNotMatch(r.stderr, /LOCKED|error/);

  daemon.child.kill("SIGTERM");
  assert.equal(await daemon.exited, 0);
  const started = daemon.log().filter((l) => l.msg === "backup started");
  assert.deepEqual(
    started.map((l) => l.trigger),
    ["schedule", "manual"],
    "one after the other, in the daemon",
  );

  const hist = await s.cli(["history", "data", "--json"]);
  const [m, sch] = JSON.parse(hist.stdout) as {
    trigger: string;
    status: string;
    startedAt: string;
    finishedAt: string;
    backup: string;
  }[];
  assert.deepEqual(
    [sch?.trigger, sch?.status, m?.trigger, m?.status, m?.backup],
    ["schedule", "ok", "manual", "ok", summary.name],
  );
  assert.ok(Date.parse(m?.startedAt as string) >= Date.parse(sch?.finishedAt as string), "no overlap");
  // keep: last 1 after the manual backup, applied WITH the catalog: the scheduled backup left both.
  assert.deepEqual(await s.listed(), [summary.name]);
  const catalog = openCatalog(loadConfig(s.config));
  try {
    assert.deepEqual(
      catalog.backups("data").map((b) => b.name),
      [summary.name],
    );
  } finally {
    catalog.close();
  }
});

test("a killed daemon's socket is ignored (the backup runs in-process) and replaced at the next start; errors through the daemon read as in-process", async () => {
  const s = await setup("bsched-control-dead-");
  await fs.writeFile(s.gate, "");
  const d1 = startDaemon(s.config, s.dir, s.slot - 3_600_000);
  await d1.waitLog("daemon started");
  d1.child.kill("SIGKILL");
  await d1.exited;
  assert.ok((await fs.stat(s.socket)).isSocket(), "the killed daemon left its socket");

  const here = await s.cli(["backup", "data", "--json"]);
  assert.equal(here.code, 0, here.stderr);
  assert.doesNotMatch(here.stderr, /the daemon/);
  const inProcess = JSON.parse(here.stdout) as Record<string, unknown>;

  const d2 = startDaemon(s.config, s.dir, s.slot - 3_600_000);
  const started = await d2.waitLog("daemon started");
  assert.equal(started.socket, s.socket);
  const via = await s.cli(["backup", "data", "--json"]);
  assert.equal(via.code, 0, via.stderr);
  assert.match(via.stderr, new RegExp(`the daemon \\(pid ${d2.child.pid}\\)`));
  const viaDaemon = JSON.parse(via.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(viaDaemon).sort(), Object.keys(inProcess).sort(), "the same JSON result");
  const human = await s.cli(["backup", "data"]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^D_\S+: full separate backup of set data: 1 files/m);
  assert.match(human.stdout, /removed D_\S+ \(keep policy of set data\)/);

  // A failure in the daemon is the CLI's failure: same code, message, hint, exit code.
  await fs.rm(path.join(s.dir, "srv", "Data"), { recursive: true });
  const failedVia = await s.cli(["backup", "data", "--json"]);
  d2.child.kill("SIGTERM");
  assert.equal(await d2.exited, 0);
  const failedHere = await s.cli(["backup", "data", "--json"]);
  assert.equal(failedVia.code, 1);
  assert.equal(failedVia.code, failedHere.code);
  assert.deepEqual(JSON.parse(failedVia.stdout), JSON.parse(failedHere.stdout));
  assert.equal(JSON.parse(failedVia.stdout).error.code, "SOURCE_MISSING");
  await assert.rejects(fs.stat(s.socket), { code: "ENOENT" }, "a stopped daemon removes its socket");
});

const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync("setpriv", ["--version"]).status === 0;

test("another user's manual backup while the daemon runs is refused, naming the daemon's socket (it would race the daemon's runs)", {
  skip: !(isRoot && hasSetpriv) && "needs root and setpriv to run the CLI as another user",
}, async () => {
  const s = await setup("bsched-control-user-");
  await fs.writeFile(s.gate, "");
  const daemon = startDaemon(s.config, s.dir, s.slot - 3_600_000);
  await daemon.waitLog("daemon started");
  // Everything readable by others but the socket (0600, the daemon's user's).
  await fs.chmod(s.dir, 0o755);
  const r = await runCli(["backup", "data", "--json", "--config", s.config], {
    cwd: s.dir,
    wrap: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
    env: { NODE_COMPILE_CACHE: undefined },
  });
  daemon.child.kill("SIGTERM");
  assert.equal(await daemon.exited, 0);
  assert.equal(r.code, 1, r.stderr);
  const { error } = JSON.parse(r.stdout) as { error: { code: string; message: string; hint: string } };
  assert.equal(error.code, "PERMISSION_DENIED");
  assert.match(error.message, new RegExp(`control socket ${s.socket} is not open to this user`));
  assert.match(error.hint, /as the user the daemon runs as/);
  assert.deepEqual(await s.listed(), [], "nothing ran beside the daemon");
});
