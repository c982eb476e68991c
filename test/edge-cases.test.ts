import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { makeServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

test("odd metadata restores exactly: pre-1970 and far-future mtimes, setuid/setgid/sticky, empty files, read-only folders", async () => {
  const s = await makeServer();
  const d = (...p: string[]) => path.join(s.data, ...p);
  await fs.writeFile(d("empty"), "");
  await fs.writeFile(d("old"), "from 1960");
  await fs.utimes(d("old"), new Date("1960-05-06T07:08:09.123456Z"), new Date("1960-05-06T07:08:09.123456Z"));
  await fs.writeFile(d("epoch"), "at the epoch");
  await fs.utimes(d("epoch"), 0, 0);
  await fs.writeFile(d("future"), "from 2200");
  await fs.utimes(d("future"), new Date("2200-01-01T00:00:00.5Z"), new Date("2200-01-01T00:00:00.5Z"));
  await fs.writeFile(d("suid"), "#!/bin/sh\n");
  await fs.chmod(d("suid"), 0o4755);
  await fs.writeFile(d("sgid"), "x");
  await fs.chmod(d("sgid"), 0o2750);
  await fs.mkdir(d("sticky"));
  await fs.chmod(d("sticky"), 0o1777);
  await fs.mkdir(d("ro/inner"), { recursive: true });
  await fs.writeFile(d("ro/inner/f"), "in a read-only folder");
  await fs.chmod(d("ro/inner"), 0o555);
  await fs.chmod(d("ro"), 0o500);
  await fs.writeFile(d("nomode"), "mode 000");
  await fs.chmod(d("nomode"), 0o000);
  await fs.mkdir(d("old-dir"));
  await fs.utimes(d("old-dir"), new Date("1969-12-31T23:59:59Z"), new Date("1969-12-31T23:59:59Z"));
  const snap = await snapshotTree(s.data);

  const b = await s.backup();
  assert.equal(b.warnings.length, 0);
  const out = path.join(s.dir, "out");
  const r = await s.cli(["restore", "data", "--to", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(diffTrees(snap, await snapshotTree(out)), []);
  // And once more through an incremental that changes nothing, then one that changes the old file.
  await fs.chmod(d("ro"), 0o700);
  await fs.writeFile(d("ro/new"), "new");
  await fs.chmod(d("ro"), 0o500);
  const snap2 = await snapshotTree(s.data);
  const b2 = await s.backup();
  assert.equal(b2.mode, "incremental");
  const out2 = path.join(s.dir, "out2");
  const r2 = await s.cli(["restore", "data", "--to", out2]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(diffTrees(snap2, await snapshotTree(out2)), []);
  await fs.chmod(d("ro"), 0o700);
  await fs.chmod(d("ro/inner"), 0o700);
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("an empty source backs up and restores to an empty folder", async () => {
  const s = await makeServer();
  const b = await s.backup();
  assert.equal(b.files, 0);
  const out = path.join(s.dir, "out");
  const r = await s.cli(["restore", "data", "--to", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await fs.readdir(out), [".bsched-restored"], "only the marker naming the backup");
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("a FIFO in the source is skipped with a warning (exit 3), never read (which would hang)", async () => {
  const s = await makeServer();
  await fs.writeFile(path.join(s.data, "f"), "f");
  execFileSync("mkfifo", [path.join(s.data, "pipe")]);
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /pipe: .*\[SKIPPED_SPECIAL\]/);
  assert.equal(JSON.parse(r.stdout).files, 1);
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("hard links come back as files with the same content", async () => {
  const s = await makeServer();
  await fs.writeFile(path.join(s.data, "a"), "shared");
  await fs.link(path.join(s.data, "a"), path.join(s.data, "b"));
  const snap = await snapshotTree(s.data);
  await s.backup();
  const out = path.join(s.dir, "out");
  const r = await s.cli(["restore", "data", "--to", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(diffTrees(snap, await snapshotTree(out)), []);
  await fs.rm(s.dir, { recursive: true, force: true });
});
