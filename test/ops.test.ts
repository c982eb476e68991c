import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { type TestContext, test } from "node:test";
import { openCatalog } from "../src/catalog/reconcile.ts";
import { getSet, loadConfig } from "../src/config/load.ts";
import { BschedError } from "../src/core/errors.ts";
import { backupNow } from "../src/ops/backup-now.ts";
import type { OpEvent } from "../src/ops/context.ts";
import { restore } from "../src/ops/restore.ts";
import { verify } from "../src/ops/verify.ts";
import { systemClock } from "../src/platform/clock.ts";
import { makeServer } from "./helpers/server.ts";

test("a manual backup whose keep deletes an old backup removes it from the catalog too (no reconcile needed)", async (t) => {
  const s = await makeServer({ prefix: "bsched-ops-prune-", mode: "full", setKeys: ["keep: { last: 1 }"] });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "a.txt"), "one");
  const first = await s.backup();
  await fs.writeFile(path.join(s.data, "a.txt"), "two");
  const second = await s.backup();
  const list = JSON.parse((await s.cli(["list", "--json"])).stdout).map((b: { name: string }) => b.name);
  assert.deepEqual(list, [second.name], "keep: { last: 1 } pruned the first backup");

  const catalog = openCatalog(loadConfig(s.config));
  try {
    assert.deepEqual(
      catalog.backups("data").map((b) => b.name),
      [second.name],
      `the pruned ${first.name} is no longer in the catalog`,
    );
  } finally {
    catalog.close();
  }
  // And the catalog agrees with the folders: nothing for `catalog check` to repair.
  const check = await s.cli(["catalog", "check", "--json"]);
  assert.equal(check.code, 0, check.stderr);
  const repairs = JSON.parse(check.stdout) as { set: string; removed: string[] }[];
  assert.deepEqual(repairs.find((r) => r.set === "data")?.removed, []);
});

test("backupNow driven directly (no CLI): the sink sees phases and counts, the result is typed and recorded", async (t) => {
  const s = await makeServer({ prefix: "bsched-ops-direct-", mode: "full", setKeys: ["keep: { last: 1 }"] });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "a.txt"), "hello");
  await fs.writeFile(path.join(s.data, "b.txt"), "world!");
  const config = loadConfig(s.config, () => undefined);
  const set = getSet(config, "data");
  const events: OpEvent[] = [];
  const ctx = { config, clock: systemClock, progress: (e: OpEvent) => events.push(e) };

  const old = await backupNow(ctx, { set });
  events.length = 0;
  const r = await backupNow(ctx, { set });

  const progress = events.flatMap((e) => (e.kind === "progress" ? [e.progress] : []));
  const phases = [...new Set(progress.map((p) => p.phase))];
  assert.ok(phases.includes("scan"), `phases seen: ${phases.join(", ")}`);
  assert.ok(phases.includes("copy"), `phases seen: ${phases.join(", ")}`);
  const last = progress.findLast((p) => p.phase === "copy");
  assert.equal(last?.totalFiles, 2);
  assert.equal(last?.totalBytes, 11);
  assert.equal(last?.files, 2);
  assert.equal(last?.bytes, 11);
  assert.deepEqual(
    events.filter((e) => e.kind === "warning" || e.kind === "catalog"),
    [],
    "no warning, catalog usable",
  );

  assert.equal(r.summary.set, "data");
  assert.equal(r.summary.files, 2);
  assert.equal(r.summary.bytes, 11);
  assert.deepEqual(r.pruned?.removed, [old.summary.name], "the keep policy ran after the backup");
  assert.equal(typeof r.runId, "number");
  const catalog = openCatalog(config);
  try {
    const run = catalog.getRun(r.runId as number);
    assert.equal(run?.status, "ok");
    assert.equal(run?.trigger, "manual");
    assert.equal(run?.backup, r.summary.name);
    assert.deepEqual(
      catalog.backups("data").map((b) => b.name),
      [r.summary.name],
    );
  } finally {
    catalog.close();
  }

  // An already-aborted signal: refused before anything starts, nothing recorded.
  const before = (await fs.readdir(set.folder)).sort();
  await assert.rejects(
    backupNow({ ...ctx, signal: AbortSignal.abort() }, { set }),
    (e: unknown) => (e as Error).name === "AbortError" || e instanceof BschedError,
  );
  assert.deepEqual((await fs.readdir(set.folder)).sort(), before);
});

test("status only reads: a catalog out of line with the folders is left for `catalog check` to repair", async (t) => {
  const s = await makeServer({ prefix: "bsched-ops-status-", mode: "full" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "a.txt"), "one");
  const first = await s.backup();
  const second = await s.backup();
  await fs.rm(path.join(s.backups, first.name), { recursive: true });

  const st = await s.cli(["status", "--json"]);
  assert.equal(st.code, 0, st.stderr);
  const json = JSON.parse(st.stdout);
  assert.equal(json.daemon.running, false);
  assert.equal(json.sets[0].backups.count, 1, "the folders are the truth for what status shows");
  assert.equal(json.sets[0].backups.newest, second.name);

  const check = await s.cli(["catalog", "check", "--json"]);
  const repairs = JSON.parse(check.stdout) as { set: string; removed: string[] }[];
  assert.deepEqual(repairs.find((r) => r.set === "data")?.removed, [first.name], "status did not write it");
});

/** A server with a full (a.txt) and an incremental (b.txt) of set data, and the set's config. */
async function fullAndIncremental(t: TestContext, prefix: string) {
  const s = await makeServer({ prefix });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "a.txt"), "one");
  const full = await s.backup();
  await fs.writeFile(path.join(s.data, "b.txt"), "two");
  const inc = await s.backup();
  const set = getSet(
    loadConfig(s.config, () => undefined),
    "data",
  );
  return { s, full, inc, set };
}

test("verify driven directly: a set's backups, one chain, or a folder by path; damage is the result", async (t) => {
  const { full, inc, set } = await fullAndIncremental(t, "bsched-ops-verify-");

  const all = await verify({}, { set });
  assert.deepEqual([all.backups, all.problems], [2, []]);
  const seen: string[] = [];
  const chain = await verify({ progress: (e) => seen.push(e.kind) }, { set, backup: full.name });
  assert.equal(chain.backups, 1, "the chain of the full is the full alone");
  assert.ok(seen.includes("progress"));
  const byPath = await verify({}, { from: inc.path });
  assert.equal(byPath.backups, 2, "the incremental and its parent");

  await fs.writeFile(path.join(full.path, "files", "a.txt"), "ONE");
  const damaged = await verify({}, { set, backup: inc.name });
  assert.equal(damaged.problems.length, 1);
  assert.equal(damaged.problems[0]?.path, "a.txt");
  await assert.rejects(
    verify({}, { set, backup: "D_1999_01_01_00_00_00" }),
    (e: unknown) => e instanceof BschedError,
  );
});

test("restore driven directly: the newest backup's chain into an empty folder, with progress events", async (t) => {
  const { s, full, inc, set } = await fullAndIncremental(t, "bsched-ops-restore-");
  const kinds = new Set<string>();
  const to = path.join(s.dir, "out");
  const r = await restore({ progress: (e) => kinds.add(e.kind) }, { set }, { to });
  assert.deepEqual([r.backup, r.chain, r.target, r.files], [inc.name, [full.name, inc.name], to, 2]);
  assert.equal(await fs.readFile(path.join(to, "b.txt"), "utf8"), "two");
  assert.ok(kinds.has("progress"));
  // Not into a folder that holds something (without overwrite): a BschedError, nothing changed.
  await assert.rejects(restore({}, { from: full.path }, { to }), (e: unknown) => e instanceof BschedError);
  assert.equal(await fs.readFile(path.join(to, "b.txt"), "utf8"), "two");
});
