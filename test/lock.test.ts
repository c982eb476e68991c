import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { pausedBackup } from "./helpers/killed.ts";
import { makeLiveServer } from "./helpers/live.ts";

const LOCK = ".bsched-lock";

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}

/** A lock file as a live bsched run on this host would have written it. */
function liveLock(what: string): string {
  const now = Date.now();
  return `${JSON.stringify({
    tool: "bsched",
    what,
    pid: process.pid,
    host: os.hostname(),
    since: new Date(now).toISOString(),
    expires: new Date(now + 600_000).toISOString(),
    token: "0123456789abcdef",
  })}\n`;
}

test("lock: held in the source folder during the run, left stale by kill -9, recognised and taken over, never backed up", async () => {
  const s = await makeLiveServer();
  for (let i = 0; i < 3; i++) await fs.writeFile(path.join(s.data, `f${i}.txt`), `file ${i}`);
  const lockFile = path.join(s.data, LOCK);

  // A real backup process stopped after one stored file (test/helpers/paused-backup.ts).
  const child = await pausedBackup(s, 1);
  const info = JSON.parse(await fs.readFile(lockFile, "utf8"));
  assert.equal(info.tool, "bsched");
  assert.equal(info.what, "backup of set data");
  assert.equal(info.pid, child.pid);
  assert.equal(info.host, os.hostname());
  assert.ok(Date.parse(info.expires) > Date.parse(info.since), "the lease runs past its start");

  child.kill();
  assert.equal(await child.closed, "SIGKILL");
  assert.ok(await exists(lockFile), "a crash leaves the lock file behind");

  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 0, `the stale lock (dead pid) is taken over: ${r.stderr}`);
  assert.equal(await exists(lockFile), false, "gone after the run");
  const out = path.join(s.dir, "out");
  const rr = await s.cli(["restore", "data", "--to", out]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.deepEqual(
    (await fs.readdir(out)).sort(),
    [".bsched-restored", "f0.txt", "f1.txt", "f2.txt"],
    "the lock file is not in the backup (the marker is the restore's)",
  );
  assert.equal(await exists(path.join(out, LOCK)), false, "restore released its own lock on the target");
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("lock: a live lock held by another run refuses the backup, names its owner, and is left alone", async () => {
  const s = await makeLiveServer();
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  const lockFile = path.join(s.data, LOCK);
  const held = liveLock("restore of backup D_2026_01_01_04_00_00");
  await fs.writeFile(lockFile, held);
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(JSON.parse(r.stdout).error.code, "LOCKED");
  assert.match(
    r.stderr,
    new RegExp(`locked by restore of backup D_2026_01_01_04_00_00 \\(pid ${process.pid} on `),
  );
  assert.equal(await fs.readFile(lockFile, "utf8"), held);
  assert.deepEqual(
    (await fs.readdir(s.backups).catch(() => [])).filter((n) => n.includes("D_")),
    [],
  );
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("lock: restore holds the target's lock (a locked target is refused; an empty folder with none is fine)", async () => {
  const s = await makeLiveServer();
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  const b = await s.cli(["backup", "data"]);
  assert.equal(b.code, 0, b.stderr);

  const busy = path.join(s.dir, "busy");
  await fs.mkdir(busy);
  await fs.writeFile(path.join(busy, LOCK), liveLock("backup of set data"));
  const refused = await s.cli(["restore", "data", "--to", busy]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /locked by backup of set data/);
  assert.deepEqual(await fs.readdir(busy), [LOCK], "nothing restored into a locked folder");

  const empty = path.join(s.dir, "empty");
  await fs.mkdir(empty);
  const ok = await s.cli(["restore", "data", "--to", empty]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual((await fs.readdir(empty)).sort(), [".bsched-restored", "a.txt"]);
  await fs.rm(s.dir, { recursive: true, force: true });
});
