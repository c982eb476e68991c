import assert from "node:assert/strict";
import { test } from "node:test";
import { StatusCache } from "../src/api/status-cache.ts";
import type { ConfigEvent, DaemonService } from "../src/daemon/service.ts";
import { RunRegistry } from "../src/ops/runs.ts";
import type { Status } from "../src/ops/status.ts";
import { systemClock } from "../src/platform/clock.ts";

function fakeService() {
  const runs = new RunRegistry(systemClock);
  const config = new Set<(e: ConfigEvent) => void>();
  const service = {
    runs,
    onConfig(l: (e: ConfigEvent) => void) {
      config.add(l);
      return () => config.delete(l);
    },
  } as unknown as DaemonService;
  const reload = () => {
    for (const l of config) l({ why: "t", ok: true });
  };
  return { service, runs, reload };
}

test("the status cache: made once while fresh, answered stale while a new one is made, made again and waited for after a run or a reload", async () => {
  const { service, runs, reload } = fakeService();
  let made = 0;
  let now = 0;
  const make = async () => ({ daemon: { n: ++made } }) as unknown as Status;
  const cache = new StatusCache(service, make, () => now);
  const n = async () => ((await cache.get()).daemon as unknown as { n: number }).n;
  assert.equal(await n(), 1);
  assert.equal(await n(), 1, "fresh: not made again");
  now = 10_000;
  assert.equal(await n(), 1, "stale: answered at once…");
  await new Promise((r) => setImmediate(r));
  assert.equal(await n(), 2, "…while a new one was made");
  // A run starting and ending: each makes the next answer a new status, waited for.
  const run = runs.start({ kind: "backup", set: "data" }, async () => "done");
  assert.equal(await n(), 3);
  await run.result;
  assert.equal(await n(), 4);
  reload();
  assert.equal(await n(), 5);
  assert.equal(await n(), 5);
});
