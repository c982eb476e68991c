import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { makeServer, type TestServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

const isRoot = process.getuid?.() === 0;
const OLD = new Date("2001-02-03T04:05:06.789Z");

/** The restore target's own folder: mode, owner, mtime in microseconds. */
async function rootOf(dir: string) {
  const st = await fs.stat(dir, { bigint: true });
  return {
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtimeUs: st.mtimeNs / 1000n,
  };
}

/** Staging folders a restore into `target` may leave beside it. */
async function leftovers(target: string): Promise<string[]> {
  const base = path.basename(target);
  return (await fs.readdir(path.dirname(target))).filter((n) => n.startsWith(`.${base}.bsched-restore-`));
}

test("restore gives --to the source root's mode, owner and mtime (older manifests: --to keeps its own)", async (t) => {
  const s = await makeServer({ mode: "full", prefix: "bsched-rootmeta-" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(s.data, "sub"));
  await fs.writeFile(path.join(s.data, "sub/a.txt"), "a");
  await fs.writeFile(path.join(s.data, "b.txt"), "b");
  await fs.chmod(s.data, 0o750);
  if (isRoot) await fs.chown(s.data, 1234, 2345);
  await fs.utimes(s.data, OLD, OLD);
  const expected = {
    mode: 0o750,
    uid: isRoot ? 1234 : (process.getuid?.() ?? 0),
    gid: isRoot ? 2345 : (process.getgid?.() ?? 0),
    // The backup's lock file in Data moves its mtime: the one recorded is from before it.
    mtimeUs: BigInt(OLD.getTime()) * 1000n,
  };
  const tree = await snapshotTree(s.data);
  const sep = await s.backup(["--type", "separate"]);
  await fs.utimes(s.data, OLD, OLD);
  const comp = await s.backup(["--type", "compressed"]);

  // Into a new folder (with a missing parent) from the separate backup.
  const out1 = path.join(s.dir, "new/out");
  const r1 = await s.cli(["restore", "data", "--backup", sep.name, "--to", out1]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.deepEqual(await rootOf(out1), expected, "separate, new folder");
  assert.deepEqual(diffTrees(tree, await snapshotTree(out1)), []);
  // Into an existing empty folder from the compressed backup.
  const out2 = path.join(s.dir, "out2");
  await fs.mkdir(out2, { mode: 0o755 });
  const r2 = await s.cli(["restore", "data", "--backup", comp.name, "--to", out2]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(await rootOf(out2), expected, "compressed, existing empty folder");
  assert.deepEqual(diffTrees(tree, await snapshotTree(out2)), []);

  // A manifest written before the root was recorded: --to keeps its own mode, as before.
  const mf = path.join(sep.path, "manifest.json");
  const text = await fs.readFile(mf, "utf8");
  assert.match(text.split("\n")[0] as string, /"root":\{"mode":488,/);
  await fs.writeFile(mf, text.replace(/"root":\{[^}]*\},/, ""));
  const out3 = path.join(s.dir, "out3");
  await fs.mkdir(out3);
  await fs.chmod(out3, 0o711);
  const r3 = await s.cli(["restore", "data", "--backup", sep.name, "--to", out3]);
  assert.equal(r3.code, 0, r3.stderr);
  assert.equal((await rootOf(out3)).mode, 0o711);
  assert.deepEqual(diffTrees(tree, await snapshotTree(out3)), []);
});

/** A source with enough files that damage in one is met mid-way. */
async function filledServer(t: { after(fn: () => Promise<void>): void }, type: string): Promise<TestServer> {
  const s = await makeServer({ mode: "full", prefix: `bsched-failed-restore-${type}-` });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(s.data, "db"));
  for (let i = 0; i < 12; i++) {
    await fs.writeFile(
      path.join(s.data, `db/f${String(i).padStart(2, "0")}.bin`),
      randomBytes(i % 2 ? 300_000 : 5000),
    );
  }
  return s;
}

/** Flip one byte of `file` at `at`; call again to repair. */
async function flip(file: string, at: number): Promise<void> {
  const fh = await fs.open(file, "r+");
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = (b[0] as number) ^ 0xff;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

test("a restore that finds damage in a separate backup leaves --to as it was, prints no success, and a retry works", async (t) => {
  const s = await filledServer(t, "separate");
  const tree = await snapshotTree(s.data);
  const b = await s.backup(["--type", "separate"]);
  const damaged = path.join(b.path, "files/db/f07.bin");
  await flip(damaged, 1000);

  // An absent --to (and its missing parent) stays absent.
  const parent = path.join(s.dir, "restores");
  const out = path.join(parent, "out");
  const r1 = await s.cli(["restore", "data", "--to", out, "--json"]);
  assert.equal(r1.code, 1, r1.stderr);
  assert.equal(JSON.parse(r1.stdout).error.code, "RESTORE_MISMATCH");
  assert.match(r1.stderr, /db\/f07\.bin \(from D_/);
  assert.match(r1.stderr, /is as it was before/);
  assert.doesNotMatch(r1.stdout + r1.stderr, /^restored /m, "no success line");
  assert.equal(
    await fs.stat(parent).then(
      () => "present",
      () => "absent",
    ),
    "absent",
  );
  assert.deepEqual(await leftovers(parent).catch(() => []), []);

  // An existing empty --to stays empty (no lock file, no staging folder beside it).
  const empty = path.join(s.dir, "empty");
  await fs.mkdir(empty);
  const r2 = await s.cli(["restore", "data", "--to", empty]);
  assert.equal(r2.code, 1, r2.stderr);
  assert.match(r2.stderr, /RESTORE_MISMATCH|did not restore exactly/);
  assert.doesNotMatch(r2.stdout + r2.stderr, /^restored /m);
  assert.deepEqual(await fs.readdir(empty), []);
  assert.deepEqual(await leftovers(empty), []);

  // A content file missing from the backup: the same.
  await flip(damaged, 1000); // repaired
  const gone = path.join(b.path, "files/db/f03.bin");
  await fs.rename(gone, `${gone}.away`);
  const r3 = await s.cli(["restore", "data", "--to", empty]);
  assert.equal(r3.code, 1, r3.stderr);
  assert.match(r3.stderr, /db\/f03\.bin/);
  assert.deepEqual(await fs.readdir(empty), []);
  assert.deepEqual(await leftovers(empty), []);

  // --overwrite into a non-empty folder cannot be undone: it says what it wrote, not success.
  const busy = path.join(s.dir, "busy");
  await fs.mkdir(busy);
  await fs.writeFile(path.join(busy, "mine.txt"), "mine");
  const r4 = await s.cli(["restore", "data", "--to", busy, "--overwrite"]);
  assert.equal(r4.code, 1, r4.stderr);
  assert.match(r4.stderr, /was partly overwritten: \d+ path\(s\) were written/);
  assert.doesNotMatch(r4.stdout + r4.stderr, /^restored /m);
  assert.equal(await fs.readFile(path.join(busy, "mine.txt"), "utf8"), "mine");

  // Repaired, the same restore is accepted (the target is still empty) and exact; the staging
  // folder a killed restore left beside it is removed.
  await fs.rename(`${gone}.away`, gone);
  await fs.mkdir(path.join(s.dir, ".empty.bsched-restore-999999-deadbeef/db"), { recursive: true });
  const ok = await s.cli(["restore", "data", "--to", empty]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(diffTrees(tree, await snapshotTree(empty)), []);
  assert.deepEqual(await leftovers(empty), []);
});

test("a restore that finds damage in a compressed backup leaves --to absent, and a retry works", async (t) => {
  const s = await filledServer(t, "compressed");
  const tree = await snapshotTree(s.data);
  const b = await s.backup(["--type", "compressed"]);
  const sh = path.join(b.path, `${b.name}.sh`);
  // Well inside the payload, past the manifest: a member's content.
  const at = Math.floor((await fs.stat(sh)).size * 0.7);
  await flip(sh, at);
  const out = path.join(s.dir, "out");
  const r1 = await s.cli(["restore", "data", "--to", out]);
  assert.equal(r1.code, 1, r1.stderr);
  assert.match(r1.stderr, /is as it was before/);
  assert.doesNotMatch(r1.stdout + r1.stderr, /^restored /m);
  assert.equal(
    await fs.stat(out).then(
      () => "present",
      () => "absent",
    ),
    "absent",
  );
  assert.deepEqual(await leftovers(out), []);

  await flip(sh, at);
  const ok = await s.cli(["restore", "data", "--to", out]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(diffTrees(tree, await snapshotTree(out)), []);
});

test("a restore that runs out of space (ENOSPC) leaves --to absent and no staging folder", async (t) => {
  const s = await filledServer(t, "enospc");
  // A 1 MiB file system for the target: needs root and mount(2); skipped where not permitted.
  const small = path.join(s.dir, "small");
  await fs.mkdir(small);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small], { stdio: "ignore" });
  } catch {
    t.skip("cannot mount a tmpfs here (needs root)");
    return;
  }
  // Unmounted here, before the server's own clean-up (after-hooks run in the order they were added).
  try {
    await s.backup(["--type", "separate"]); // 1.8 MB of files: more than the target can hold
    const out = path.join(small, "out");
    const r = await s.cli(["restore", "data", "--to", out]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /ENOSPC|space/i);
    assert.match(r.stderr, /is as it was before/);
    assert.doesNotMatch(r.stdout + r.stderr, /^restored /m);
    assert.deepEqual(await fs.readdir(small), [], "no --to, no staging folder");
  } finally {
    execFileSync("umount", [small]);
  }
});
