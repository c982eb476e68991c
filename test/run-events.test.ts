import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { getSet, loadConfig } from "../src/config/load.ts";
import type { Progress } from "../src/core/types.ts";
import type { OpEvent } from "../src/ops/context.ts";
import { type RunInfo, RunRegistry } from "../src/ops/runs.ts";
import { startBackup, startRestore, startVerify } from "../src/ops/start.ts";
import type { Clock } from "../src/platform/clock.ts";
import { makeServer } from "./helpers/server.ts";

/** A clock that moves one second each time it is read: rates are then a matter of the clock, not of the machine. */
function steppingClock(from: string): Clock {
  let t = Date.parse(from);
  return {
    now: () => {
      t += 1000;
      return new Date(t);
    },
  };
}

/** The phases in the order first seen. */
const phasesOf = (ps: Progress[]) => [...new Set(ps.map((p) => p.phase))];

test("a backup's, a restore's and a verify's events: phases in order, counts, current path, rate by the run's clock, the result; listed only while running", async (t) => {
  const s = await makeServer({ prefix: "bsched-run-events-", mode: "full" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(s.data, "sub"));
  await fs.writeFile(path.join(s.data, "a.txt"), "hello");
  await fs.writeFile(path.join(s.data, "sub", "b.txt"), "world!");
  const config = loadConfig(s.config, () => undefined);
  const set = getSet(config, "data");
  const clock = steppingClock("2026-06-01T10:00:00Z");
  const runs = new RunRegistry(clock);

  const events: OpEvent[] = [];
  const listed: RunInfo[][] = [];
  const run = startBackup(runs, { config, clock }, { set });
  assert.deepEqual(
    runs.list().map((r) => [r.id, r.kind, r.set, r.trigger]),
    [[run.info.id, "backup", "data", "manual"]],
    "registered as soon as started",
  );
  run.subscribe((e) => {
    events.push(e);
    listed.push(runs.list());
  });
  const result = await run.result;
  assert.deepEqual(runs.list(), [], "not listed once it ended");
  assert.equal(runs.get(run.info.id), undefined);
  assert.ok(
    listed.every((l) => l.length === 1 && l[0]?.id === run.info.id),
    "listed at every event",
  );

  const progress = events.flatMap((e) => (e.kind === "progress" ? [e.progress] : []));
  assert.deepEqual(phasesOf(progress), ["scan", "copy", "publish", "done"]);
  const copied = progress.filter((p) => p.phase === "copy" && p.current !== undefined);
  assert.deepEqual(copied.map((p) => p.current).sort(), ["a.txt", "sub/b.txt"], "each file named as done");
  const done = progress.at(-1) as Progress;
  assert.deepEqual(
    [done.files, done.totalFiles, done.bytes, done.totalBytes],
    [2, 2, 11, 11],
    "counts of the whole backup",
  );
  // The clock moves a second a read: the rate is bytes over those seconds, finite and positive.
  assert.ok(done.rate !== undefined && done.rate > 0 && done.rate <= 11, `rate ${done.rate}`);
  assert.equal(
    run.info.last?.kind === "progress" && run.info.last.progress.phase,
    "done",
    "the newest event kept",
  );
  assert.equal(result.summary.files, 2);
  assert.equal(result.summary.bytes, 11);
  assert.deepEqual(
    events.filter((e) => e.kind === "warning"),
    [],
  );

  // A clock that stands still gives no rate: it comes from the injected clock, not the machine's.
  const frozen = { now: () => new Date("2026-06-01T11:00:00Z") };
  const still: Progress[] = [];
  await startBackup(
    new RunRegistry(frozen),
    { config, clock: frozen, progress: (e) => e.kind === "progress" && still.push(e.progress) },
    { set, prune: false },
  ).result;
  assert.ok(still.some((p) => p.phase === "copy" && p.bytes === 11));
  assert.ok(
    still.every((p) => p.rate === 0),
    "a frozen clock: rate 0",
  );

  // A restore: its files, then the staging folder moved into place, then done.
  const restored: Progress[] = [];
  const to = path.join(s.dir, "out");
  const r = await startRestore(
    runs,
    { clock, progress: (e) => e.kind === "progress" && restored.push(e.progress) },
    { set, backup: result.summary.name },
    { to },
  ).result;
  assert.equal(r.files, 2);
  assert.deepEqual(phasesOf(restored), ["restore", "publish", "done"]);
  assert.deepEqual(
    restored
      .filter((p) => p.current)
      .map((p) => p.current)
      .sort(),
    ["a.txt", "sub/b.txt"],
  );
  assert.deepEqual([restored.at(-1)?.files, restored.at(-1)?.bytes], [2, 11]);

  // A verify: its files, then done.
  const verified: Progress[] = [];
  const v = await startVerify(
    runs,
    { clock, progress: (e) => e.kind === "progress" && verified.push(e.progress) },
    { set, backup: result.summary.name },
  ).result;
  assert.deepEqual(v.problems, []);
  assert.deepEqual(phasesOf(verified), ["verify", "done"]);
  assert.deepEqual([verified.at(-1)?.files, verified.at(-1)?.totalFiles, verified.at(-1)?.bytes], [2, 2, 11]);
  assert.deepEqual(runs.list(), []);
});
