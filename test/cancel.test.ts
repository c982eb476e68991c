import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { openCatalog } from "../src/catalog/reconcile.ts";
import { getSet, loadConfig } from "../src/config/load.ts";
import { BschedError } from "../src/core/errors.ts";
import { listBackups } from "../src/destination/backups.ts";
import { destinationOf } from "../src/destination/for-set.ts";
import { backupNow } from "../src/ops/backup-now.ts";
import type { OpEvent } from "../src/ops/context.ts";
import type { RunHandle } from "../src/ops/runs.ts";
import { RunRegistry } from "../src/ops/runs.ts";
import { startBackup, startRestore, startVerify } from "../src/ops/start.ts";
import { systemClock } from "../src/platform/clock.ts";
import { BIN, collect } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";

const MiB = 1 << 20;

/** A file of `mib` MiB that is neither sparse nor all zeros, so every byte is read and written. */
async function bigFile(file: string, mib: number): Promise<void> {
  const block = Buffer.alloc(MiB, "bsched cancel test ");
  const fh = await fs.open(file, "w");
  try {
    for (let i = 0; i < mib; i++) await fh.write(block);
  } finally {
    await fh.close();
  }
}

const isCancelled = (e: unknown) => e instanceof BschedError && e.code === "CANCELLED";

/**
 * Cancel `run` from its own event stream once its byte-counting phase (`phase`) has passed
 * `after` bytes: a point known to be inside the large file, whatever the machine's speed.
 * Returns the progress events seen after the cancel.
 */
async function cancelMidway<T>(run: RunHandle<T>, phase: string, after: number) {
  let cancelledAt: number | undefined;
  const later: OpEvent[] = [];
  run.subscribe((e) => {
    if (e.kind !== "progress") return;
    if (cancelledAt !== undefined) later.push(e);
    else if (e.progress.phase === phase && e.progress.bytes >= after) {
      cancelledAt = e.progress.bytes;
      run.cancel();
    }
  });
  await assert.rejects(run.result, isCancelled);
  assert.ok(cancelledAt !== undefined && cancelledAt < 24 * MiB, "cancelled inside the large file");
  return { cancelledAt, later };
}

for (const type of ["separate", "compressed"] as const) {
  test(`cancel a running ${type} backup, then a restore and a verify of it: nothing left, locks free, the next runs fine`, async (t) => {
    const s = await makeServer({
      prefix: `bsched-cancel-${type}-`,
      mode: "full",
      setKeys: [`type: ${type}`],
    });
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(s.data, "a.txt"), "small");
    await bigFile(path.join(s.data, "big.bin"), 24);
    const config = loadConfig(s.config, () => undefined);
    const set = getSet(config, "data");
    const ctx = { config, clock: systemClock };
    const runs = new RunRegistry(systemClock);

    // The backup: cancelled 4 MiB into the 24 MiB file (its first mid-file event).
    const backup = startBackup(runs, ctx, { set });
    const b = await cancelMidway(backup, "copy", 4 * MiB);
    // Stopped within the file: no chunk after the cancel was counted, no file finished, no publish.
    assert.deepEqual(b.later, [], "no progress after the cancel");
    assert.deepEqual(runs.list(), [], "the run left the registry");
    assert.deepEqual(await fs.readdir(set.folder), [], "no temporary folder, no run lock left");
    assert.deepEqual((await fs.readdir(s.data)).sort(), ["a.txt", "big.bin"], "the source lock released");
    const listing = await listBackups(destinationOf(set), set.letter, set.id);
    assert.deepEqual([listing.backups, listing.incomplete], [[], []], "nothing listed");
    const catalog = openCatalog(config);
    try {
      const [run] = catalog.runs({ set: "data" });
      assert.equal(run?.status, "failed");
      assert.match(run?.error ?? "", /cancelled/);
      assert.deepEqual(catalog.backups("data"), []);
    } finally {
      catalog.close();
    }

    // The next run is fine (a lock left behind would make it LOCKED).
    const done = await backupNow(ctx, { set });
    assert.equal(done.summary.files, 2);

    // A restore into a new folder: cancelled inside the large file, --to not left behind.
    const to = path.join(s.dir, "out", "restored");
    const restore = startRestore(runs, {}, { set }, { to });
    const r = await cancelMidway(restore, "restore", 4 * MiB);
    assert.deepEqual(r.later, []);
    assert.deepEqual(runs.list(), []);
    assert.deepEqual(
      await fs.readdir(s.dir).then((n) => n.includes("out")),
      false,
      "--to and its parent removed",
    );
    const again = await startRestore(runs, {}, { set }, { to }).result;
    assert.equal(again.files, 2, "the target's lock was released: the restore runs again");
    assert.deepEqual(await fs.readdir(path.join(s.dir, "out")), ["restored"], "no staging folder beside it");
    assert.equal((await fs.stat(path.join(to, "big.bin"))).size, 24 * MiB);

    // A verify: cancelled, not reported as damage.
    const verify = startVerify(runs, {}, { set });
    await cancelMidway(verify, "verify", 4 * MiB);
    const checked = await startVerify(runs, {}, { set }).result;
    assert.deepEqual(checked.problems, []);
  });
}

test("Ctrl-C (SIGINT) in `bsched backup` cancels the run: exit 1 with CANCELLED, no temporary folder, nothing listed", async (t) => {
  const s = await makeServer({ prefix: "bsched-cancel-sigint-", mode: "full" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "a.txt"), "small");
  await bigFile(path.join(s.data, "big.bin"), 64);
  const child = spawn(process.execPath, [BIN, "backup", "data", "--json", "--config", s.config], {
    cwd: s.dir,
    env: { ...process.env, BSCHED_CONFIG: undefined },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const result = collect(child);
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  // A failed assertion below must not leave a frozen child behind.
  t.after(() => {
    if (!exited) child.kill("SIGKILL");
  });
  // Mid-way: the large file partly copied into the temporary folder. The child is frozen
  // (SIGSTOP) for each look, so that a loaded machine cannot let it finish between the look and
  // the Ctrl-C; it handles the SIGINT once it continues.
  const big = 64 * MiB;
  const copiedSize = async () => {
    const tmp = (await fs.readdir(s.backups).catch(() => [] as string[])).find((n) => n.includes(".tmp-"));
    if (!tmp) return 0;
    return (await fs.stat(path.join(s.backups, tmp, "files", "big.bin")).catch(() => undefined))?.size ?? 0;
  };
  for (;;) {
    if (exited) assert.fail(`the backup ended before it was interrupted: ${JSON.stringify(await result)}`);
    child.kill("SIGSTOP");
    const size = await copiedSize();
    if (size > 0 && size < big) {
      child.kill("SIGINT");
      child.kill("SIGCONT");
      break;
    }
    child.kill("SIGCONT");
    assert.ok(size < big, "the large file was copied whole between two looks");
    await new Promise((r) => setTimeout(r, 2));
  }
  const r = await result;
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Ctrl-C: cancelling/);
  assert.equal(JSON.parse(r.stdout).error.code, "CANCELLED");
  assert.deepEqual(await fs.readdir(s.backups), [], "temporary folder and run lock gone");
  assert.deepEqual((await fs.readdir(s.data)).sort(), ["a.txt", "big.bin"], "the source lock released");
  const list = await s.cli(["list", "--json"]);
  assert.deepEqual(JSON.parse(list.stdout), [], "nothing listed");
});
