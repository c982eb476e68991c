import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { getSet, loadConfig } from "../src/config/load.ts";
import { BschedError } from "../src/core/errors.ts";
import { backupViaDaemon } from "../src/daemon/control-client.ts";
import type { Log } from "../src/daemon/scheduler.ts";
import { DaemonService } from "../src/daemon/service.ts";
import type { OpEvent } from "../src/ops/context.ts";
import type { Clock } from "../src/platform/clock.ts";
import { tempDir } from "./helpers/cli.ts";
import { ndjson } from "./helpers/control.ts";
import { waitFor } from "./helpers/live.ts";
import { webhookReceiver as receiver } from "./helpers/webhook.ts";

/*
 * The daemon service driven in-process, as the next issue's HTTP server will drive it: start,
 * runNow with its events, a scheduled run and a manual one through one queue, reload, stop. Real
 * files, a real SQLite catalog, real hooks; the clock runs at real speed from an instant the test
 * can move forward (then poke() makes the loop look at it).
 */

class ShiftClock implements Clock {
  offset: number;
  constructor(at: number) {
    this.offset = at - Date.now();
  }
  now(): Date {
    return new Date(Date.now() + this.offset);
  }
  jumpTo(at: number): void {
    this.offset = at - Date.now();
  }
}

function recordingLog(): Log & { lines: { level: string; msg: string; obj: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const at = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, msg, obj: obj as Record<string, unknown> });
  };
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}

async function webhookReceiver(t: { after(fn: () => Promise<void>): void }) {
  const hook = await receiver({ after: (fn) => t.after(fn) });
  return { posts: hook.posts, url: hook.url("/hook") };
}

/**
 * A root with set `data` (daily 04:00 UTC, keep last 1) whose before-hook waits for `gate` to exist
 * (or the folder to be gone: a failed test's cleanup must not leave a hook looping).
 */
async function setup(t: { after(fn: () => Promise<void>): void }, webhook: string) {
  const dir = await tempDir("bsched-service-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  await fs.writeFile(path.join(dir, "srv", "Data", "db.dat"), "cardholders");
  const gate = path.join(dir, "gate");
  const config = path.join(dir, "bsched.yaml");
  const yaml = `server:
  root: ${path.join(dir, "srv")}
  timezone: UTC
sets:
  data:
    letter: D
    source: Data
    frequency: daily
    time: "04:00"
    keep: { last: 1 }
    hooks: { before: "while [ ! -e '${gate}' ] && [ -d '${dir}' ]; do sleep 0.05; done" }
    notify: { webhook: "${webhook}", on: [success, failure] }
`;
  await fs.writeFile(config, yaml);
  const backups = path.join(dir, "srv", "Backup");
  const listed = async () =>
    (await fs.readdir(backups).catch(() => [] as string[]))
      .filter((n) => /^D_\d{4}(_\d\d){5}(_\d+)?$/.test(n))
      .sort();
  return { dir, gate, config, yaml, backups, listed, state: path.join(dir, "srv", ".bsched") };
}

const slotAfter = (ms: number) => {
  const slot = new Date(ms);
  slot.setUTCDate(slot.getUTCDate() + 1);
  slot.setUTCHours(4, 0, 0, 0);
  return slot.getTime();
};

test("daemon service in-process: runNow with events, a manual run waits for the scheduled run of its set, retention with the catalog, stop with a run in progress", async (t) => {
  const hook = await webhookReceiver(t);
  const s = await setup(t, hook.url);
  const slot = slotAfter(Date.now());
  const clock = new ShiftClock(slot - 3_600_000);
  const log = recordingLog();
  const service = new DaemonService({ configFile: s.config, clock, log, watchMs: 0 });
  await service.start();
  let stopped = false;
  t.after(async () => {
    // A failed assertion may leave a run waiting in its hook: let it end, then stop.
    await fs.writeFile(s.gate, "").catch(() => undefined);
    if (!stopped) await service.stop({ graceMs: 60_000 }).catch(() => undefined);
  });
  assert.equal(service.socketPath, path.join(s.state, "daemon.sock"));
  assert.equal((await fs.stat(service.socketPath as string)).mode & 0o777, 0o600);

  // 1. Run now, watching its events: phases, counts, then the result.
  await fs.writeFile(s.gate, "");
  const events: OpEvent[] = [];
  const first = service.runNow("data", { progress: (e) => events.push(e) });
  assert.deepEqual(
    service.runs.list().map((r) => [r.kind, r.set, r.trigger]),
    [["backup", "data", "manual"]],
  );
  const r1 = await first.result;
  assert.equal(r1.summary.files, 1);
  const phases = events.flatMap((e) => (e.kind === "progress" ? [e.progress.phase] : []));
  assert.ok(phases.includes("scan") && new Set(phases).size >= 2, `phases: ${phases.join(",")}`);
  assert.ok(
    events.some((e) => e.kind === "progress" && e.progress.files === 1 && e.progress.totalFiles === 1),
    "counts: 1 of 1 file",
  );
  assert.deepEqual(service.runs.list(), [], "an ended run leaves the registry");
  assert.equal(service.catalog.getRun(r1.runId as number)?.status, "ok");
  assert.ok(
    log.lines.filter((l) => l.msg === "phase" && l.obj.set === "data").length >= 2,
    "the daemon's log gets phase lines",
  );
  await waitFor("the manual run's notification", () => hook.posts.length === 1, 60_000);
  assert.deepEqual(
    hook.posts.map((p) => [p.event, p.status, p.planned, p.backup]),
    [["success", "ok", null, r1.summary.name]],
  );

  // 2. The scheduled run of the set starts (and waits in its hook); a run asked for now queues behind it.
  await fs.rm(s.gate);
  clock.jumpTo(slot);
  service.poke();
  await waitFor("the scheduled run", () => service.runs.list().some((r) => r.trigger === "schedule"), 60_000);
  const waitLines: string[] = [];
  const second = service.runNow("data", {
    progress: (e) => {
      if (e.kind === "log") waitLines.push(e.line);
    },
  });
  await waitFor("the manual run in the queue", () => service.scheduler.queuedSets().length === 1, 60_000);
  assert.deepEqual(service.scheduler.queuedSets(), ["data"], "queued, not started beside it");
  assert.deepEqual(service.scheduler.runningSets(), ["data"]);
  assert.deepEqual(waitLines, ["waiting for the daemon's running backup of set data"]);
  assert.equal(
    service.runs
      .list()
      .map((r) => r.trigger)
      .sort()
      .join(),
    "manual,schedule",
  );
  await fs.writeFile(s.gate, "");
  const r2 = await second.result;
  const [manual, scheduled] = service.catalog.runs({ set: "data", limit: 2 });
  assert.equal(manual?.id, r2.runId);
  assert.deepEqual(
    [scheduled?.trigger, scheduled?.status, scheduled?.planned, manual?.trigger, manual?.status],
    ["schedule", "ok", new Date(slot).toISOString(), "manual", "ok"],
  );
  assert.ok(
    Date.parse(manual?.startedAt as string) >= Date.parse(scheduled?.finishedAt as string),
    "the manual run started after the scheduled one ended",
  );
  // keep: last 1, applied with the catalog after each: the folder and the catalog agree.
  assert.deepEqual(await s.listed(), [r2.summary.name]);
  assert.deepEqual(
    service.catalog.backups("data").map((b) => b.name),
    [r2.summary.name],
  );
  assert.equal(service.catalog.runs({ status: "failed" }).length, 0);

  // 3. Reload: a broken file is refused and the old config kept; a good one applies.
  await fs.writeFile(s.config, s.yaml.replace('"04:00"', '"25:00"'));
  assert.equal(service.reload("test"), false);
  assert.equal(service.config.sets.get("data")?.time, "04:00");
  await fs.writeFile(s.config, s.yaml.replace("keep: { last: 1 }", "keep: { last: 5 }"));
  assert.equal(service.reload("test"), true);
  assert.equal(service.config.sets.get("data")?.keep?.last, 5);

  // 4. stop() with a run in progress waits for it (within the grace period); meanwhile nothing new starts.
  await fs.rm(s.gate);
  const third = service.runNow("data");
  await waitFor("the third run to start", () => service.scheduler.runningSets().length === 1, 60_000);
  const stopping = service.stop({ graceMs: 120_000 });
  stopped = true;
  assert.throws(
    () => service.runNow("data"),
    (e) => e instanceof BschedError && e.code === "LOCKED" && /daemon is stopping/.test(e.message),
  );
  await fs.writeFile(s.gate, "");
  const stop = await stopping;
  assert.deepEqual(stop, { finished: true, aborted: [], removed: [] });
  const r3 = await third.result;
  assert.equal(r3.summary.warnings.length, 0);
  assert.equal((await s.listed()).length, 2, "keep: last 5 (reloaded) kept both");
  await assert.rejects(fs.stat(path.join(s.state, "daemon.lock")), { code: "ENOENT" });
  await assert.rejects(fs.stat(path.join(s.state, "daemon.sock")), { code: "ENOENT" });
  await waitFor("every run's notification", () => hook.posts.length === 4, 60_000);
  assert.deepEqual(
    hook.posts.map((p) => [p.event, p.planned]),
    [
      ["success", null],
      ["success", new Date(slot).toISOString()],
      ["success", null],
      ["success", null],
    ],
  );
});

test("daemon service: a run asked for now that still waits when the daemon stops is refused, and a removed set's is failed", async (t) => {
  const hook = await webhookReceiver(t);
  const s = await setup(t, hook.url);
  const clock = new ShiftClock(slotAfter(Date.now()) - 3_600_000);
  const service = new DaemonService({
    configFile: s.config,
    clock,
    log: recordingLog(),
    watchMs: 0,
    control: false,
  });
  await service.start();
  assert.equal(service.socketPath, undefined);
  const running = service.runNow("data");
  await waitFor("the first run to start", () => service.scheduler.runningSets().length === 1, 60_000);
  const queued = service.runNow("data");
  const rejected = assert.rejects(queued.result, (e) => e instanceof BschedError && e.code === "LOCKED");
  const stopping = service.stop({ graceMs: 120_000 });
  await rejected;
  await fs.writeFile(s.gate, "");
  assert.equal((await stopping).finished, true);
  assert.equal((await running.result).summary.files, 1);
  // Unknown sets are refused at once, with the usual error.
  const again = new DaemonService({
    configFile: s.config,
    clock,
    log: recordingLog(),
    watchMs: 0,
    control: false,
  });
  await again.start();
  t.after(async () => {
    await fs.writeFile(s.gate, "").catch(() => undefined);
    await again.stop({ graceMs: 60_000 });
  });
  assert.throws(
    () => again.runNow("nope"),
    (e) => e instanceof BschedError && e.code === "SET_UNKNOWN",
  );
  // A set removed by a reload while its run waited: that run fails with SET_UNKNOWN, not silently.
  await fs.rm(s.gate);
  const busy = again.runNow("data");
  await waitFor("a run to start", () => again.scheduler.runningSets().length === 1, 60_000);
  const orphan = again.runNow("data");
  await fs.writeFile(
    s.config,
    s.yaml.replace("sets:\n  data:", "sets:\n  other:").replace("letter: D", "letter: O"),
  );
  assert.equal(again.reload("test"), true);
  await fs.writeFile(s.gate, "");
  await busy.result;
  await assert.rejects(orphan.result, (e) => e instanceof BschedError && e.code === "SET_UNKNOWN");
});

test("control socket in-process: a backup submitted by a client waits in the queue; the client's signal cancels it there (DELETE /runs/:id)", async (t) => {
  const hook = await webhookReceiver(t);
  const s = await setup(t, hook.url);
  const clock = new ShiftClock(slotAfter(Date.now()) - 3_600_000);
  const service = new DaemonService({ configFile: s.config, clock, log: recordingLog(), watchMs: 0 });
  await service.start();
  t.after(async () => {
    await fs.writeFile(s.gate, "").catch(() => undefined);
    await service.stop({ graceMs: 60_000 });
  });
  const first = service.runNow("data");
  await waitFor("the first run to start", () => service.scheduler.runningSets().length === 1, 60_000);
  const config = loadConfig(s.config);
  const abort = new AbortController();
  const lines: string[] = [];
  const submitted = backupViaDaemon(
    {
      config,
      clock,
      signal: abort.signal,
      progress: (e) => {
        if (e.kind === "log") lines.push(e.line);
      },
    },
    { set: getSet(config, "data") },
  );
  await waitFor("the client's run in the queue", () => service.scheduler.queuedSets().length === 1, 60_000);
  await waitFor("the client to hear it is queued", () => lines.length === 2, 60_000);
  assert.deepEqual(lines, [
    `the daemon (pid ${process.pid}) runs this backup in its queue`,
    "waiting for the daemon's running backup of set data",
  ]);
  abort.abort();
  // Cancelled while it waited: CANCELLED (exit 1) like a run cancelled mid-way, never INTERNAL.
  await assert.rejects(
    submitted,
    (e: Error & { code?: string }) =>
      e.code === "CANCELLED" && /waiting in the daemon's queue/.test(e.message),
  );
  assert.deepEqual(service.scheduler.queuedSets(), []);
  // Another client watches the running one: GET /runs/:id/events streams until its result.
  const watched = await ndjson(service.socketPath as string, `/runs/${first.info.id}/events`);
  assert.equal(watched.status, 200);
  await fs.writeFile(s.gate, "");
  const r = await first.result;
  const streamed = await watched.lines;
  assert.equal((streamed.at(-1) as { result?: { runId?: number } }).result?.runId, r.runId);
  assert.equal((streamed[0] as { run?: { id: string } }).run?.id, first.info.id);
  assert.ok(streamed.slice(1, -1).every((l) => "event" in (l as object)));
  const gone = await ndjson(service.socketPath as string, `/runs/${first.info.id}/events`);
  assert.equal(gone.status, 404, "an ended run has no stream");
  assert.deepEqual(
    service.catalog.runs({ set: "data" }).map((x) => [x.id, x.status]),
    [[r.runId, "ok"]],
    "the cancelled run never started: nothing recorded for it",
  );
});
