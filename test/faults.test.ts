import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { getSet, loadConfig } from "../src/config/load.ts";
import { BschedError } from "../src/core/errors.ts";
import { type FaultPlan, faulty } from "../src/destination/faulty.ts";
import { destinationOf } from "../src/destination/for-set.ts";
import { backupNow } from "../src/ops/backup-now.ts";
import { list } from "../src/ops/list.ts";
import { prune } from "../src/ops/prune.ts";
import { restore } from "../src/ops/restore.ts";
import { verify } from "../src/ops/verify.ts";
import { systemClock } from "../src/platform/clock.ts";
import { makeServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

// Issue 10 item 6: faults of the backup folder, injected by the fault wrapper
// (src/destination/faulty.ts) between the real pipelines and a real local folder. Each run must
// fail cleanly — a clear error, nothing half-written listed, the target of a restore untouched,
// damage reported by verify — and the next run without the fault must succeed.

const BIG = "big.db";

/** A server whose set `data` holds a file too large to be read whole (BIG) and two small ones. */
async function setup(
  t: { after(fn: () => Promise<void>): void },
  setKeys: string[] = [],
  mode: "full" | "incremental" = "full",
) {
  const s = await makeServer({ mode, setKeys });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, BIG), randomBytes(600 * 1024));
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  await fs.mkdir(path.join(s.data, "sub"));
  await fs.writeFile(path.join(s.data, "sub", "b.txt"), "b");
  const config = loadConfig(s.config);
  const set = getSet(config, "data");
  const ctx = { config, clock: systemClock };
  /** The set's own folder with the faults of `plan`. */
  const withFaults = (plan: FaultPlan) => faulty(destinationOf(set), plan);
  const listed = async () => (await list(ctx, set)).backups.map((b) => b.name);
  /** Everything in the backup folder but its backups: temporary folders, locks. */
  const leftovers = async () =>
    (await fs.readdir(s.backups).catch(() => [] as string[])).filter((n) => n.startsWith("."));
  return { s, config, set, ctx, withFaults, listed, leftovers };
}

/** What `p` rejects with (it must reject). */
async function failure(p: Promise<unknown>): Promise<BschedError> {
  return p.then(
    () => assert.fail("expected a failure"),
    (e: unknown) => {
      assert.ok(e instanceof BschedError, `a BschedError with code and hint, not ${String(e)}`);
      assert.ok(e.hint, `a hint for ${e.message}`);
      return e;
    },
  );
}

/** The folder beside `to` holds no staging of a restore into it. */
async function noRestoreStaging(to: string): Promise<void> {
  const beside = await fs.readdir(path.dirname(to));
  assert.deepEqual(
    beside.filter((n) => n.startsWith(`.${path.basename(to)}.`)),
    [],
    "the restore's staging folder is removed",
  );
}

test("ENOSPC at publish: DISK_FULL naming the folder and the fix; nothing listed, staging removed; the next backup is fine", async (t) => {
  const { s, set, ctx, withFaults, listed, leftovers } = await setup(t);
  const dest = withFaults({ enospcAtPublish: true });
  const e = await failure(backupNow(ctx, { set, destination: dest }));
  assert.equal(e.code, "DISK_FULL");
  assert.ok(e.message.includes(s.backups), e.message);
  assert.match(e.hint ?? "", /free space|larger disk/);
  assert.equal(dest.calls.get("publish"), 1, "the fault was reached");
  assert.deepEqual(await listed(), [], "nothing listed");
  assert.deepEqual(await leftovers(), [], "no staging folder, no lock left");
  const h = await s.cli(["history", "--json"]);
  assert.equal(JSON.parse(h.stdout)[0]?.status, "failed", "the run is recorded as failed");

  const ok = await s.backup();
  assert.deepEqual(await listed(), [ok.name]);
});

test("a run stopped at publish (beforePublish) holds the lock until then and leaves nothing; the next run is fine", async (t) => {
  const { s, set, ctx, withFaults, listed, leftovers } = await setup(t);
  const dest = withFaults({
    beforePublish: async (backup, staging) => {
      // Everything written, nothing visible yet: a second run of the set is refused meanwhile.
      assert.match(backup, /^D_/);
      assert.ok((await fs.readdir(path.join(staging.dir, "files"))).includes(BIG));
      assert.deepEqual(await listed(), []);
      const r = await s.cli(["backup", "data", "--json"]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(JSON.parse(r.stdout).error.code, "LOCKED");
      throw new Error("stopped before publish");
    },
  });
  await assert.rejects(backupNow(ctx, { set, destination: dest }), /stopped before publish/);
  assert.deepEqual(await listed(), []);
  assert.deepEqual(await leftovers(), [], "staging removed, lock released");
  const ok = await s.backup();
  assert.equal(ok.mode, "full");
});

test("a lock that cannot be taken is a clear error (code, folder, hint); nothing written; the next run is fine", async (t) => {
  const { s, set, ctx, withFaults, listed, leftovers } = await setup(t);
  const dest = withFaults({ fail: [{ op: "lock", nth: 1, code: "EACCES" }] });
  const e = await failure(backupNow(ctx, { set, destination: dest }));
  assert.equal(e.code, "PERMISSION_DENIED");
  assert.ok(e.message.includes(s.backups), e.message);
  assert.equal(dest.calls.get("stage") ?? 0, 0, "nothing staged without the lock");
  assert.deepEqual(await listed(), []);
  assert.deepEqual(await leftovers(), []);
  await s.backup();
  assert.equal((await listed()).length, 1);
});

for (const type of ["separate", "compressed"] as const) {
  // Each read fault on the stored content, not the manifest (a separate backup's big file is read
  // with read(), a compressed backup's file streamed): an error, a file cut short under the
  // reader, a read or a stream (a connection) breaking part-way.
  const content = type === "separate" ? /\/files\/big\.db$/ : /\.sh$/;
  const names = type === "separate" ? /big\.db/ : /D_\w+\.sh/;
  const faults: { what: string; plan: FaultPlan }[] = [
    {
      what: "a read error",
      plan: { fail: [{ op: type === "separate" ? "read" : "stream", nth: 1, on: content, andAfter: true }] },
    },
    { what: "a stored file cut short", plan: { truncateReadsAt: 100_000, readsOf: content } },
    {
      what: "reads failing part-way",
      plan: { failAfterBytesRead: { bytes: 100_000, code: "EIO" }, readsOf: content },
    },
    ...(type === "compressed"
      ? [{ what: "a stream crashing part-way", plan: { crashStreamsAfterBytes: 100_000, readsOf: content } }]
      : []),
  ];
  for (const f of faults) {
    test(`${type}: ${f.what} fails restore naming it (target untouched) and verify reports the damage, never ok`, async (t) => {
      const { s, set, withFaults } = await setup(t, type === "compressed" ? ["type: compressed"] : []);
      const b = await s.backup();
      const to = path.join(s.dir, "restored");
      const dest = withFaults(f.plan);
      const e = await failure(restore({}, { set }, { to, destination: dest }));
      assert.match(`${e.message}\n${e.hint}`, names, e.message);
      await assert.rejects(fs.lstat(to), { code: "ENOENT" }, "the target was never created");
      await noRestoreStaging(to);

      const v = await verify({}, { set }, { destination: withFaults(f.plan) });
      assert.ok(v.problems.length > 0, "verify never calls it sound");
      assert.ok(
        v.problems.some((p) => p.backup === b.name && names.test(`${p.path ?? ""} ${p.problem}`)),
        JSON.stringify(v.problems),
      );

      // Without the fault the same backup restores exactly and verifies.
      const r = await restore({}, { set }, { to });
      assert.equal(r.backup, b.name);
      await fs.rm(path.join(to, ".bsched-restored"));
      assert.deepEqual(diffTrees(await snapshotTree(s.data), await snapshotTree(to)), []);
      assert.deepEqual((await verify({}, { set })).problems, []);
    });
  }

  test(`${type}: short reads that a correct reader loops over change nothing (restore exact, verify ok)`, async (t) => {
    const { s, set, withFaults } = await setup(t, type === "compressed" ? ["type: compressed"] : []);
    await s.backup();
    const to = path.join(s.dir, "restored");
    const dest = withFaults({ shortReads: 1000 });
    await restore({}, { set }, { to, destination: dest });
    await fs.rm(path.join(to, ".bsched-restored"));
    assert.deepEqual(diffTrees(await snapshotTree(s.data), await snapshotTree(to)), []);
    assert.deepEqual(
      (await verify({}, { set }, { destination: withFaults({ shortReads: 1000 }) })).problems,
      [],
    );
  });
}

test("a remove failing mid-prune: no chain broken (newest first), the next prune finishes", async (t) => {
  // Two chains F I I | F I; keep {last: 1} deletes the first whole chain.
  const { s, set, ctx, withFaults, listed } = await setup(
    t,
    ["fullEvery: 3", "keep: { last: 1 }"],
    "incremental",
  );
  const made: string[] = [];
  for (let i = 0; i < 5; i++) {
    await fs.writeFile(path.join(s.data, "a.txt"), `version ${i}`);
    made.push((await backupNow(ctx, { set, prune: false })).summary.name);
  }
  const modes = (await list(ctx, set)).backups.map((b) => b.mode);
  assert.deepEqual(modes, ["full", "incremental", "incremental", "full", "incremental"]);

  const dest = withFaults({ fail: [{ op: "remove", nth: 2 }] });
  const e = await failure(prune(ctx, set, { destination: dest }));
  assert.equal(e.code, "IO");
  assert.ok(e.message.includes(made[1] as string), `names the backup it could not remove: ${e.message}`);
  assert.equal(dest.calls.get("remove"), 2);
  const after = (await list(ctx, set)).backups;
  assert.deepEqual(
    after.map((b) => b.name),
    [made[0], made[1], made[3], made[4]],
    "the newest of the doomed chain went first",
  );
  assert.deepEqual(
    after.filter((b) => b.state !== "ok").map((b) => b.name),
    [],
    "every backup left is restorable",
  );

  const done = await prune(ctx, set);
  assert.deepEqual(done.removed.sort(), [made[0], made[1]].sort());
  assert.deepEqual(await listed(), [made[3], made[4]]);
  const to = path.join(s.dir, "restored");
  await restore({}, { set }, { to });
  assert.equal(await fs.readFile(path.join(to, "a.txt"), "utf8"), "version 4");
});
