import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { makeServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree, type TreeRecord } from "./helpers/tree.ts";

/**
 * Backups written by the version before format 3 (test/fixtures/v2: a separate full and an
 * incremental, each manifest a whole state, with a SQLite file of 4 KiB pages that has a block
 * map; made with that version's CLI and BSCHED_BLOCK_MIN=32768, never rewritten). They must still
 * restore and verify exactly, and a chain they end must go on with format-3 incrementals (whose
 * manifests list only changes) that restore exactly too.
 */
const FIXTURE = fileURLToPath(new URL("./fixtures/v2/", import.meta.url));
const ENV = { BSCHED_BLOCK_MIN: "32768" };

test("v2 fixture: restores and verifies exactly, and a format-3 incremental on a v2 parent restores exactly", async (t) => {
  const s = await makeServer({ prefix: "bsched-v2-" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.rm(s.data, { recursive: true });
  execFileSync("cp", ["-a", path.join(FIXTURE, "separate"), s.backups]);
  const expected: Record<string, Record<string, TreeRecord>> = JSON.parse(
    await fs.readFile(path.join(FIXTURE, "expected.json"), "utf8"),
  );
  const v2 = (await fs.readdir(s.backups)).sort();
  assert.equal(v2.length, 2);
  const restoreExactly = async (name: string, want: Map<string, TreeRecord>) => {
    const out = path.join(s.dir, `out-${name}`);
    const r = await s.cli(["restore", "data", "--backup", name, "--to", out, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(diffTrees(want, await snapshotTree(out)), [], name);
  };
  for (const name of v2) await restoreExactly(name, new Map(Object.entries(expected[name] ?? {})));

  // The chain goes on from the v2 incremental: its state is the source again (new inodes, so
  // every file is read once more), then a change of each kind.
  const r = await s.cli(["restore", "data", "--backup", v2[1] as string, "--to", s.data]);
  assert.equal(r.code, 0, r.stderr);
  const db = new DatabaseSync(path.join(s.data, "db.sqlite"));
  db.exec("UPDATE t SET v = 'v3' WHERE id = 100");
  db.close();
  await fs.rm(path.join(s.data, "new.txt"));
  await fs.rm(path.join(s.data, "becomes-dir"), { recursive: true });
  await fs.writeFile(path.join(s.data, "becomes-dir"), "a file again\n");
  await fs.rename(path.join(s.data, "docs"), path.join(s.data, "papers"));
  await fs.writeFile(path.join(s.data, "added.txt"), "added by format 3\n");
  const want3 = await snapshotTree(s.data);
  const b3 = JSON.parse((await s.cli(["backup", "data", "--json"], ENV)).stdout);
  assert.equal(b3.mode, "incremental");
  assert.equal(b3.parent, v2[1]);
  const header = (name: string) =>
    fs.readFile(path.join(s.backups, name, "manifest.json"), "utf8").then((x) => JSON.parse(x));
  const m3 = await header(b3.name);
  assert.equal(m3.header.formatVersion, 3);
  assert.equal(m3.header.holds, "changes");
  assert.equal(m3.header.totals.files, [...want3.values()].filter((x) => x.kind === "file").length);
  const still = JSON.parse((await s.cli(["backup", "data", "--json"], ENV)).stdout);
  assert.equal(still.parent, b3.name);
  assert.deepEqual((await header(still.name)).entries, [], "nothing changed: no entry");

  for (const [name, want] of [
    [b3.name, want3],
    [still.name, want3],
  ] as const)
    await restoreExactly(name, want);
  const v = await s.cli(["verify", "data", "--json"]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.deepEqual(JSON.parse(v.stdout).problems, []);
  assert.equal(JSON.parse(v.stdout).backups, 4);
});
