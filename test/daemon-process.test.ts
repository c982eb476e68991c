import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { runCli, tempDir } from "./helpers/cli.ts";
import { killDaemons, startDaemon } from "./helpers/daemon-proc.ts";
import { webhookReceiver } from "./helpers/webhook.ts";

/*
 * A real daemon process: test/helpers/daemon-child.ts runs the same process wrapper as `bsched
 * daemon` (src/daemon/process.ts) with its clock started at a given instant, so that a slot is a
 * few seconds ahead, or days behind, without waiting for them (and however slowly it starts). The
 * real `bsched daemon` command runs here too, where no shifted clock is needed (a second daemon
 * refused).
 */

const dirs: string[] = [];
after(async () => {
  killDaemons();
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

const backupsIn = async (folder: string) =>
  (await fs.readdir(folder).catch(() => [] as string[])).filter((n) => /^D_\d{4}(_\d\d){5}$/.test(n)).sort();

test("real daemon: runs on time, refuses a second daemon, reloads on SIGHUP, stops on SIGTERM, catches up exactly once", async () => {
  const dir = await tempDir("bsched-daemon-");
  dirs.push(dir);
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  await fs.writeFile(path.join(dir, "srv", "Data", "db.dat"), "cardholders");
  const hook = await webhookReceiver({ after });
  const { posts, port } = hook;
  const config = path.join(dir, "bsched.yaml");
  const yaml = `server:
  root: srv
  timezone: UTC
sets:
  data:
    letter: D
    source: Data
    frequency: daily
    time: "04:00"
    notify: { webhook: "http://127.0.0.1:${port}/hook", on: [success, missed, failure] }
`;
  await fs.writeFile(config, yaml);
  const backups = path.join(dir, "srv", "Backup");

  // Phase 1: the daemon's clock reads 4 s before tomorrow's 04:00 UTC slot.
  const slot = new Date();
  slot.setUTCDate(slot.getUTCDate() + 1);
  slot.setUTCHours(4, 0, 0, 0);
  const d1 = startDaemon(config, dir, slot.getTime() - 3000);
  await d1.waitLog("daemon started");

  const second = await runCli(["daemon", "--config", config], { cwd: dir });
  assert.equal(second.code, 1);
  assert.match(
    second.stderr,
    /another bsched daemon is already running on the state folder .*\.bsched \(pid \d+/,
  );

  const finished = await d1.waitLog("backup finished");
  const names = await backupsIn(backups);
  assert.equal(names.length, 1);
  const ymd = slot.toISOString().slice(0, 10).replaceAll("-", "_");
  // Within the 10 minutes that make it an on-time run: a start slowed by a loaded machine passes the
  // slot before the first look at the clock, and the slot still runs (it came after the start).
  assert.match(
    names[0] as string,
    new RegExp(`^D_${ymd}_04_0\\d_\\d\\d$`),
    "made at the slot, by the daemon's clock",
  );
  assert.equal(finished.backup, names[0]);

  // SIGHUP reloads; so does a changed file; a broken file is refused and the old config kept.
  d1.child.kill("SIGHUP");
  await d1.waitLog("config reloaded");
  assert.equal(d1.log().find((l) => l.msg === "config reloaded")?.why, "SIGHUP");
  await fs.writeFile(config, yaml.replace('"04:00"', '"25:00"'));
  const refused = await d1.waitLog("config NOT reloaded (keeping the previous one)");
  assert.match(String(refused.err), /sets\.data\.time/);
  await fs.writeFile(config, `${yaml}    keep: { last: 10 }\n`);
  await d1.waitFor((l) => l.msg === "config reloaded" && l.why === "config file changed");
  d1.child.kill("SIGTERM");
  assert.equal(await d1.exited, 0);
  assert.ok(d1.log().some((l) => l.msg === "daemon stopped"));

  // Phase 2: down for two more slots; on restart exactly one catch-up run.
  const d2 = startDaemon(config, dir, slot.getTime() + 2 * 86_400_000 + 3_600_000);
  const missed = await d2.waitLog("missed slots: running once now");
  assert.equal(missed.missedSlots, 2);
  await d2.waitLog("backup finished");
  await new Promise((r) => setTimeout(r, 1500));
  d2.child.kill("SIGTERM");
  assert.equal(await d2.exited, 0);
  assert.equal(d2.log().filter((l) => l.msg === "backup started").length, 1);
  assert.equal((await backupsIn(backups)).length, 2);

  const hist = await runCli(["history", "data", "--json", "--config", config], { cwd: dir });
  assert.equal(hist.code, 0, hist.stderr);
  const runs = JSON.parse(hist.stdout) as {
    trigger: string;
    planned: string;
    slots: number;
    status: string;
  }[];
  assert.deepEqual(
    runs.map((r) => [r.trigger, r.planned, r.slots, r.status]),
    [
      ["catch-up", new Date(slot.getTime() + 2 * 86_400_000).toISOString(), 2, "ok"],
      ["schedule", slot.toISOString(), 1, "ok"],
    ],
  );

  // Phase 3: a killed daemon's lock is taken over by the next one.
  const d3 = startDaemon(config, dir, slot.getTime() + 2 * 86_400_000 + 7_200_000);
  await d3.waitLog("daemon started");
  d3.child.kill("SIGKILL");
  await d3.exited;
  const d4 = startDaemon(config, dir, slot.getTime() + 2 * 86_400_000 + 7_300_000);
  await d4.waitLog("daemon started");
  d4.child.kill("SIGTERM");
  assert.equal(await d4.exited, 0);
  assert.equal((await backupsIn(backups)).length, 2, "no run for slots already handled");

  assert.deepEqual(
    posts.map((p) => [p.event, p.set, p.status, p.missedSlots]),
    [
      ["success", "data", "ok", undefined],
      ["missed", "data", "catch-up", 2],
      ["success", "data", "ok", undefined],
    ],
    "the webhook heard each outcome",
  );

  const status = await runCli(["status", "--json", "--config", config], { cwd: dir });
  assert.equal(status.code, 0, status.stderr);
  const st = JSON.parse(status.stdout);
  assert.equal(st.daemon.running, false);
  assert.equal(st.sets[0].backups.count, 2);
  assert.equal(st.sets[0].lastRun.trigger, "catch-up");
});

test("real daemon: SIGTERM aborts a run that outlives --stop-timeout, records it, keeps nothing partial", async () => {
  const dir = await tempDir("bsched-daemon-abort-");
  dirs.push(dir);
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  await fs.writeFile(path.join(dir, "srv", "Data", "db.dat"), "x");
  const config = path.join(dir, "bsched.yaml");
  // The set's before-hook keeps the run busy until the test's folder is gone: longer than the stop bound.
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: UTC
sets:
  data:
    letter: D
    source: Data
    frequency: daily
    time: "04:00"
    hooks: { before: "while [ -d '${dir}' ]; do sleep 0.05; done" }
`,
  );
  const slot = new Date();
  slot.setUTCDate(slot.getUTCDate() + 1);
  slot.setUTCHours(4, 0, 0, 0);
  // The clock starts when the daemon does: the slot comes after its start, so it runs however slowly
  // the start goes (src/daemon/scheduler.ts, SchedulerDeps.since).
  const d1 = startDaemon(config, dir, slot.getTime() - 6000, 1);
  await d1.waitLog("backup started");
  d1.child.kill("SIGTERM");
  assert.equal(await d1.exited, 1);
  await d1.waitLog("running backups aborted; their temporary folders were removed");
  const hist = await runCli(["history", "--json", "--config", config], { cwd: dir });
  const [run] = JSON.parse(hist.stdout);
  assert.equal(run.status, "aborted");
  assert.match(run.error, /did not finish within 1 s/);
  const left = await fs.readdir(path.join(dir, "srv", "Backup")).catch(() => [] as string[]);
  assert.deepEqual(left, [], "no backup, no temporary folder, no set lock of ours");

  // The slot is not lost: the next start runs it once.
  await fs.writeFile(config, (await fs.readFile(config, "utf8")).replace(/ {4}hooks:.*\n/, ""));
  const d = startDaemon(config, dir, slot.getTime() + 60_000);
  await d.waitLog("the last run was aborted: its slot is due again");
  const done = await d.waitLog("backup finished");
  d.child.kill("SIGTERM");
  assert.equal(await d.exited, 0);
  const again = JSON.parse((await runCli(["history", "--json", "--config", config], { cwd: dir })).stdout);
  assert.deepEqual(
    again.map((r: { trigger: string; status: string; planned: string }) => [r.trigger, r.status, r.planned]),
    [
      ["catch-up", "ok", slot.toISOString()],
      ["schedule", "aborted", slot.toISOString()],
    ],
  );
  assert.deepEqual(await fs.readdir(path.join(dir, "srv", "Backup")), [done.backup]);
});
