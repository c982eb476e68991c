import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli, tempDir } from "./helpers/cli.ts";
import { diffTrees, snapshotTree, type TreeRecord } from "./helpers/tree.ts";

/**
 * Backups written by the version before issue 10 (test/fixtures/v1: a separate full + incremental,
 * a compressed full; made with that version's CLI, never rewritten): the on-disk format is a
 * promise, so each must still restore exactly the tree it was made from and verify clean.
 */
const FIXTURE = fileURLToPath(new URL("./fixtures/v1/", import.meta.url));

async function fixtureCopy(): Promise<{ dir: string; expected: Record<string, Record<string, TreeRecord>> }> {
  const dir = await tempDir("bsched-v1-");
  execFileSync("cp", ["-a", path.join(FIXTURE, "separate"), path.join(FIXTURE, "compressed"), dir]);
  const expected = JSON.parse(await fs.readFile(path.join(FIXTURE, "expected.json"), "utf8"));
  return { dir, expected };
}

for (const type of ["separate", "compressed"]) {
  test(`v1 fixture (${type}): every backup restores exactly and verifies clean`, async (t) => {
    const { dir, expected } = await fixtureCopy();
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const names = (await fs.readdir(path.join(dir, type))).sort();
    assert.equal(names.length, type === "separate" ? 2 : 1);
    for (const name of names) {
      const from = path.join(dir, type, name);
      const out = path.join(dir, `out-${name}`);
      const r = await runCli(["restore", "--from", from, "--to", out, "--json"], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).backup, name);
      const want = new Map(Object.entries(expected[name] ?? {}));
      assert.ok(want.size > 5, `expected tree of ${name}`);
      assert.deepEqual(diffTrees(want, await snapshotTree(out)), [], name);
      const v = await runCli(["verify", "--from", from, "--json"], { cwd: dir });
      assert.equal(v.code, 0, v.stdout + v.stderr);
      assert.deepEqual(JSON.parse(v.stdout).problems, []);
    }
  });
}
