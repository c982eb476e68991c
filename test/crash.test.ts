import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { backupKilledMidway } from "./helpers/killed.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

async function fillSource(s: TestServer, n: number, tag: string): Promise<void> {
  await fs.mkdir(path.join(s.data, "d"), { recursive: true });
  for (let i = 0; i < n; i++) await fs.writeFile(path.join(s.data, "d", `f${i}`), `${tag} ${i} `.repeat(100));
}

async function listNames(s: TestServer): Promise<string[]> {
  const r = await s.cli(["list", "data", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).map((b: { name: string }) => b.name);
}

test("kill -9 mid full backup: nothing listed, stale lock ignored, next run succeeds and cleans up", async () => {
  const s = await makeServer();
  await fillSource(s, 40, "v1");
  await backupKilledMidway(s, 10);

  const left = await fs.readdir(s.backups);
  assert.ok(
    left.some((n) => /^\.D_.*\.tmp-\d+-[0-9a-f]+$/.test(n)),
    `a temp folder is left: ${left.join(", ")}`,
  );
  assert.ok(left.includes(".bsched-data.lock"), "the killed run's lock is left behind");
  assert.deepEqual(await listNames(s), [], "a crashed run is never listed");
  const v = await s.cli(["restore", "data", "--to", path.join(s.dir, "nothing")]);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /no complete backup/);

  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /removed the leftover of an interrupted run/);
  const b = JSON.parse(r.stdout);
  assert.equal(b.mode, "full");
  assert.deepEqual(await listNames(s), [b.name]);
  const after = await fs.readdir(s.backups);
  assert.deepEqual(after, [b.name], "no temp folder and no lock remain");
  const inSource = (await fs.readdir(s.data)).filter((n) => n.startsWith("."));
  assert.deepEqual(inSource, [], "no lock file is left in the source folder either");
  const snap = await snapshotTree(s.data);

  const out = path.join(s.dir, "out");
  const rr = await s.cli(["restore", "data", "--to", out]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.deepEqual(diffTrees(snap, await snapshotTree(out)), []);
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("kill -9 mid incremental: the crashed run is never used as a parent", async () => {
  const s = await makeServer();
  await fillSource(s, 20, "v1");
  const full = await s.backup();
  await fillSource(s, 20, "v2");
  await backupKilledMidway(s, 5);
  assert.deepEqual(await listNames(s), [full.name]);

  await fs.writeFile(path.join(s.data, "extra"), "extra");
  const inc = await s.backup();
  const snap = await snapshotTree(s.data);
  assert.equal(inc.mode, "incremental");
  assert.equal(inc.parent, full.name);
  assert.equal(inc.storedFiles, 21);
  assert.deepEqual(await listNames(s), [full.name, inc.name]);
  const out = path.join(s.dir, "out");
  const rr = await s.cli(["restore", "data", "--to", out]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.deepEqual(diffTrees(snap, await snapshotTree(out)), []);
  const ver = await s.cli(["verify", "data"]);
  assert.equal(ver.code, 0, ver.stderr);
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("a folder named like a backup but without a manifest is listed as broken, never a parent", async () => {
  const s = await makeServer();
  await fillSource(s, 3, "v1");
  const full = await s.backup();
  // A hand-made or half-copied folder with a later name.
  const fake = path.join(s.backups, "D_2099_01_01_00_00_00");
  await fs.mkdir(path.join(fake, "files"), { recursive: true });
  const l = await s.cli(["list", "data", "--json"]);
  assert.deepEqual(
    JSON.parse(l.stdout).map((b: { name: string; state: string }) => [b.name, b.state]),
    [
      [full.name, "ok"],
      ["D_2099_01_01_00_00_00", "broken"],
    ],
  );
  assert.match(l.stderr, /not a complete backup/);
  const inc = await s.backup();
  assert.equal(inc.parent, full.name);
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("two backups of one set never overlap: the second is refused with LOCKED naming the first", async () => {
  const s = await makeServer();
  await fillSource(s, 10, "v1");
  await backupKilledMidway(s, 3, async () => {
    const r = await s.cli(["backup", "data", "--json"]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout).error.code, "LOCKED");
    assert.match(r.stderr, /locked by backup of set data \(pid \d+/);
  });
  const ok = await s.backup();
  assert.equal(ok.mode, "full");
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("an incremental whose parent chain was damaged by hand falls back to a full, with a warning", async () => {
  const s = await makeServer();
  await fillSource(s, 3, "v1");
  const full = await s.backup();
  await fs.writeFile(path.join(s.data, "new"), "n");
  const inc = await s.backup();
  await fs.rm(path.join(s.backups, full.name), { recursive: true });
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 3, r.stderr);
  const b = JSON.parse(r.stdout);
  assert.equal(b.mode, "full");
  assert.match(r.stderr, new RegExp(`${inc.name}.*full backup instead`));
  const snap = await snapshotTree(s.data);
  const out = path.join(s.dir, "out");
  const rr = await s.cli(["restore", "data", "--to", out]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.deepEqual(diffTrees(snap, await snapshotTree(out)), []);
  const missing = await s.cli(["restore", "data", "--to", out, "--backup", "D_2000_01_01_00_00_00"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no backup D_2000_01_01_00_00_00/);
  await fs.rm(s.dir, { recursive: true, force: true });
});
