import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { inParallel, mapInParallel } from "../src/core/parallel.ts";

test("inParallel: at most n at once, started in order; mapInParallel keeps the items' order", async () => {
  let now = 0;
  let most = 0;
  const started: number[] = [];
  await inParallel([5, 1, 4, 2, 3], 2, async (ms, i) => {
    started.push(i);
    most = Math.max(most, ++now);
    await sleep(ms);
    now--;
  });
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  assert.equal(most, 2);
  assert.deepEqual(
    await mapInParallel([3, 1, 2], 3, async (x) => {
      await sleep(x);
      return x * 10;
    }),
    [30, 10, 20],
  );
});

test("inParallel: the first failure starts nothing more, is told at once, and is thrown once everything started has ended", async () => {
  const ended: number[] = [];
  const told: unknown[] = [];
  const err = new Error("item 1 failed");
  await assert.rejects(
    inParallel(
      [0, 1, 2, 3, 4, 5],
      3,
      async (_x, i) => {
        if (i === 1) throw err;
        await sleep(i === 0 ? 30 : 5);
        ended.push(i);
        if (i === 2) throw new Error("a later failure, not the one thrown");
      },
      (e) => told.push(e),
    ),
    (e: unknown) => e === err,
  );
  assert.deepEqual(told, [err], "told once, of the first");
  assert.deepEqual(ended.sort(), [0, 2], "what was started ended; nothing started after the failure");
});
