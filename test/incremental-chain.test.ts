import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { makeServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

const ODD_NAMES = [
  "with space.txt",
  "new\nline.txt",
  "-leading-dash",
  "--double",
  "é 漢字 ✓.txt",
  "tab\there",
  "*?[glob]",
  "back\\slash",
  "emoji 🦀",
  "\u00e9 vs e\u0301",
];

async function setTime(p: string, when: Date): Promise<void> {
  await fs.utimes(p, when, when);
}

test("full → changes → incremental → more changes → incremental: every point restores exactly", async () => {
  const s = await makeServer();
  const d = (...p: string[]) => path.join(s.data, ...p);

  // Point 1: the initial tree.
  await fs.mkdir(d("dir1/sub"), { recursive: true });
  await fs.mkdir(d("empty"));
  await fs.mkdir(d("private"), { mode: 0o700 });
  await fs.writeFile(d("a.txt"), "original content of a");
  await fs.writeFile(d("same.bin"), "AAAAAAAAAAAAAAAA");
  await fs.writeFile(d("log.txt"), "line 1\n");
  await fs.writeFile(d("del.txt"), "to be deleted");
  await fs.writeFile(d("dir1/f1"), "in dir1");
  await fs.writeFile(d("dir1/sub/f2"), "in dir1/sub");
  await fs.writeFile(d("mode.sh"), "#!/bin/sh\necho hi\n", { mode: 0o644 });
  await fs.writeFile(d("private/secret"), "s3cret", { mode: 0o600 });
  await fs.writeFile(d("becomes-dir"), "file now, folder later");
  await fs.mkdir(d("becomes-file"));
  await fs.writeFile(d("becomes-file/x"), "x");
  for (const n of ODD_NAMES) await fs.writeFile(d(n), `odd: ${JSON.stringify(n)}`);
  await fs.symlink("a.txt", d("link"));
  await fs.symlink("/nonexistent/dangling", d("dangling"));
  await fs.chmod(d("dir1"), 0o750);
  const old = new Date("2020-02-03T04:05:06.789Z");
  await setTime(d("same.bin"), old);
  await setTime(d("a.txt"), old);
  await setTime(d("dir1/sub"), new Date("2019-01-01T00:00:00Z"));
  await setTime(d("empty"), new Date("2018-06-07T08:09:10.123456Z"));
  await fs.lutimes(d("link"), old, old);
  const snap1 = await snapshotTree(s.data);

  const b1 = await s.backup();
  assert.equal(b1.mode, "full");
  assert.equal(b1.parent, null);

  // Changes.
  await fs.writeFile(d("a.txt"), "modified content of a, longer than before");
  const sameStat = await fs.stat(d("same.bin"));
  await fs.writeFile(d("same.bin"), "BBBBBBBBBBBBBBBB"); // same size...
  await fs.utimes(d("same.bin"), sameStat.atime, sameStat.mtime); // ...and same mtime (touch -r)
  assert.equal((await fs.stat(d("same.bin"))).mtimeMs, sameStat.mtimeMs);
  await fs.appendFile(d("log.txt"), "line 2\n");
  await fs.rm(d("del.txt"));
  await fs.writeFile(d("added.txt"), "new file");
  await fs.rename(d("dir1"), d("dir2"));
  await fs.chmod(d("mode.sh"), 0o755);
  await fs.rm(d("link"));
  await fs.symlink("log.txt", d("link"));
  await fs.mkdir(d("empty2"));
  await fs.mkdir(d("new folder/nested empty"), { recursive: true });
  await fs.chmod(d("private"), 0o711);
  await fs.writeFile(d("new\nline.txt"), "changed odd name");
  await setTime(d("new folder"), new Date("2021-01-01T00:00:00Z"));
  const snap2 = await snapshotTree(s.data);

  const b2 = await s.backup();
  assert.equal(b2.mode, "incremental");
  assert.equal(b2.parent, b1.name);
  // a.txt, same.bin, log.txt, added.txt, dir2/f1, dir2/sub/f2, mode.sh, new\nline.txt
  assert.equal(b2.storedFiles, 8, "only new and changed files are stored");

  // More changes: kinds swap, a deletion of a whole folder, a file back to old content.
  await fs.rm(d("becomes-dir"));
  await fs.mkdir(d("becomes-dir"));
  await fs.writeFile(d("becomes-dir/inside"), "now a folder");
  await fs.rm(d("becomes-file"), { recursive: true });
  await fs.writeFile(d("becomes-file"), "now a file");
  await fs.rm(d("dir2"), { recursive: true });
  await fs.writeFile(d("a.txt"), "original content of a");
  await setTime(d("a.txt"), old);
  await fs.rm(d("link"));
  await fs.mkdir(d("link"));
  const snap3 = await snapshotTree(s.data);

  const b3 = await s.backup();
  assert.equal(b3.mode, "incremental");
  assert.equal(b3.parent, b2.name);

  const list = await s.cli(["list", "data", "--json"]);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    JSON.parse(list.stdout).map((b: { name: string }) => b.name),
    [b1.name, b2.name, b3.name],
  );

  const restoreAndCompare = async (label: string, expected: typeof snap1, args: string[]) => {
    const out = path.join(s.dir, `out-${label}`);
    const r = await s.cli(["restore", "data", "--to", out, ...args]);
    assert.equal(r.code, 0, `${label}: ${r.stderr}`);
    assert.deepEqual(diffTrees(expected, await snapshotTree(out)), [], `restore of ${label}`);
  };
  await restoreAndCompare("newest", snap3, []);
  await restoreAndCompare("first", snap1, ["--backup", b1.name]);
  await restoreAndCompare("middle", snap2, ["--backup", b2.name]);

  // The restored files' contents are right (snapshotTree compares hashes; spot-check the tricky one).
  const first = path.join(s.dir, "out-first");
  assert.equal(await fs.readFile(path.join(first, "same.bin"), "utf8"), "AAAAAAAAAAAAAAAA");
  assert.equal(
    await fs.readFile(path.join(s.dir, "out-middle", "same.bin"), "utf8"),
    "BBBBBBBBBBBBBBBB",
    "a same-size same-mtime rewrite is detected",
  );
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("an incremental with no change stores nothing, lists no entry and restores the same tree", async () => {
  const s = await makeServer();
  await fs.mkdir(path.join(s.data, "x/y"), { recursive: true });
  await fs.writeFile(path.join(s.data, "x/y/f"), "f");
  for (let i = 0; i < 200; i++) await fs.writeFile(path.join(s.data, "x", `file-${i}.txt`), `content ${i}`);
  const snap = await snapshotTree(s.data);
  // Past the racy window (src/snapshot/diff.ts isRacy): a file changed within 50 ms of its backup
  // is read and stored again by the next incremental.
  await new Promise((r) => setTimeout(r, 100));
  const b1 = await s.backup();
  const b2 = await s.backup();
  assert.equal(b2.mode, "incremental");
  assert.equal(b2.parent, b1.name);
  assert.equal(b2.storedFiles, 0);
  assert.equal(b2.files, 201, "the header's totals are the whole state's");
  // Format 3: the manifest lists only changes, here none; a full lists every entry.
  const manifest = (name: string) => fs.readFile(path.join(s.backups, name, "manifest.json"), "utf8");
  const [full, none] = [await manifest(b1.name), await manifest(b2.name)];
  assert.equal(JSON.parse(full).entries.length, 203);
  assert.equal(JSON.parse(none).header.holds, "changes");
  assert.deepEqual(JSON.parse(none).entries, []);
  assert.deepEqual(JSON.parse(none).deletions, []);
  assert.ok(none.length * 20 < full.length, `${none.length} bytes against the full's ${full.length}`);
  const out = path.join(s.dir, "out");
  const r = await s.cli(["restore", "data", "--to", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(diffTrees(snap, await snapshotTree(out)), []);
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("--mode full makes a new chain; restore of the old chain still works", async () => {
  const s = await makeServer();
  await fs.writeFile(path.join(s.data, "f"), "v1");
  const snap1 = await snapshotTree(s.data);
  const b1 = await s.backup();
  await fs.writeFile(path.join(s.data, "f"), "v2");
  const snap2 = await snapshotTree(s.data);
  const b2 = await s.backup(["--mode", "full"]);
  assert.equal(b2.mode, "full");
  assert.equal(b2.parent, null);
  for (const [label, name, snap] of [
    ["one", b1.name, snap1],
    ["two", b2.name, snap2],
  ] as const) {
    const out = path.join(s.dir, label);
    const r = await s.cli(["restore", "data", "--to", out, "--backup", name]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(diffTrees(snap, await snapshotTree(out)), []);
  }
  await fs.rm(s.dir, { recursive: true, force: true });
});
