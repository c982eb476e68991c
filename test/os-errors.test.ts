import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { type TestContext, test } from "node:test";
import { runCli } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync("setpriv", ["--version"]).status === 0;

/** Whether this machine lets us mount a tmpfs (root in a container may not): probed once. */
async function canMount(): Promise<boolean> {
  if (!isRoot) return false;
  const probe = await fs.mkdtemp("/tmp/bsched-mount-probe-");
  const ok = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]).status === 0;
  if (ok) spawnSync("umount", [probe]);
  await fs.rmdir(probe);
  return ok;
}
const mountSkip = (await canMount()) ? false : "needs root and permission to mount a tmpfs";

/**
 * Every tmpfs still mounted: unmounted when this process exits, before helpers/cli.ts removes its
 * temporary folders, even when the run is killed half-way (SIGTERM, SIGINT): a mount left behind
 * would keep its folder from ever being removed.
 */
const mounted = new Set<string>();
process.once("exit", () => {
  for (const m of mounted) spawnSync("umount", ["-l", m]);
});
for (const sig of ["SIGTERM", "SIGINT"] as const)
  process.once(sig, () => process.exit(128 + (sig === "SIGTERM" ? 15 : 2)));

/** A test server whose folder is removed when the test ends, after the disks mounted in it are unmounted. */
async function serverWithDisks(t: TestContext) {
  const s = await makeServer({ mode: "full" });
  const mounts: string[] = [];
  t.after(async () => {
    for (const m of mounts) {
      spawnSync("umount", [m]);
      mounted.delete(m);
    }
    await fs.rm(s.dir, { recursive: true, force: true });
  });
  /** Mount a small tmpfs on `dir` (created). */
  const smallDisk = async (dir: string, options: string) => {
    await fs.mkdir(dir, { recursive: true });
    const r = spawnSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    mounts.push(dir);
    mounted.add(dir);
  };
  return { s, smallDisk };
}

const leftovers = async (folder: string) => (await fs.readdir(folder)).filter((n) => n.includes(".tmp-"));

test("a full disk is DISK_FULL with needed and free sizes; refused early when it clearly cannot fit; the previous backup is intact", {
  skip: mountSkip,
}, async (t) => {
  const { s, smallDisk } = await serverWithDisks(t);
  const disk = path.join(s.dir, "disk");
  const folder = path.join(disk, "Backup");
  await fs.appendFile(s.config, `    folder: ${folder}\n`);
  await smallDisk(disk, "size=2m");
  await fs.writeFile(path.join(s.data, "small"), "a small file");
  const first = await s.cli(["backup", "data", "--json"]);
  assert.equal(first.code, 0, first.stderr);
  assert.doesNotMatch(first.stderr, /SAME_FILESYSTEM/, "the backup folder is on its own file system");
  const good = JSON.parse(first.stdout).name as string;

  // 3 MB that does not compress, on a 2 MB disk.
  await fs.writeFile(path.join(s.data, "big.bin"), randomBytes(3_000_000));
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 1, r.stderr);
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, "DISK_FULL");
  assert.match(err.message, /needed ~3\.\d MB, free \d\.\d MB/);
  assert.match(err.message, /nothing was written/, "refused before writing: the size was known");
  assert.match(err.hint, /free space on .*disk.*or set sets\.data\.folder to a larger disk/);
  assert.match(r.stderr, /bsched: error: no space left .*\n {2}hint: /);

  // Compressed, with no earlier compressed backup to estimate from: tried, fails mid-write.
  const c = await s.cli(["backup", "data", "--type", "compressed", "--json"]);
  assert.equal(c.code, 1, c.stderr);
  const cerr = JSON.parse(c.stdout).error;
  assert.equal(cerr.code, "DISK_FULL", c.stdout);
  assert.match(cerr.message, /no space left on .*disk.*: needed ~3\.\d MB, free \d\.\d MB/);
  assert.ok(cerr.hint, "a hint, never null");
  assert.doesNotMatch(c.stdout, /"code": "ENOSPC"/);

  assert.deepEqual(await leftovers(folder), [], "the temporary folder is removed");
  const l = await s.cli(["list", "--json"]);
  assert.deepEqual(
    JSON.parse(l.stdout).map((b: { name: string }) => b.name),
    [good],
  );
  const v = await s.cli(["verify", "data"]);
  assert.equal(v.code, 0, v.stderr + v.stdout);
});

test("a read-only backup disk is an IO error naming the folder, with a hint", {
  skip: mountSkip,
}, async (t) => {
  const { s, smallDisk } = await serverWithDisks(t);
  const disk = path.join(s.dir, "ro");
  await fs.appendFile(s.config, `    folder: ${disk}/Backup\n`);
  await smallDisk(disk, "size=1m,ro");
  await fs.writeFile(path.join(s.data, "f"), "f");
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 1, r.stderr);
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, "IO");
  assert.match(err.message, new RegExp(`read-only file system: cannot mkdir ${disk}/Backup`));
  assert.match(err.hint, /remount .*ro read-write/);
});

test("a backup folder the user cannot write is PERMISSION_DENIED naming the path and the user", {
  skip: isRoot && !hasSetpriv ? "runs as root and setpriv is missing" : false,
}, async (t) => {
  const s = await makeServer({ mode: "full" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "f"), "f");
  const locked = path.join(s.dir, "locked");
  await fs.mkdir(path.join(locked, "Backup"), { recursive: true });
  await fs.appendFile(s.config, `    folder: ${locked}/Backup\n`);
  if (isRoot) {
    await fs.chmod(s.dir, 0o755);
    spawnSync("chown", ["-R", `${NOBODY}:${NOBODY}`, s.dir]);
    spawnSync("chown", ["-R", "0:0", locked]);
  } else {
    await fs.chmod(path.join(locked, "Backup"), 0o555);
    t.after(() => fs.chmod(path.join(locked, "Backup"), 0o755));
  }
  const wrap = isRoot ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"] : [];
  const r = await runCli(["backup", "data", "--json", "--config", s.config], {
    cwd: s.dir,
    wrap,
    env: { NODE_COMPILE_CACHE: undefined },
  });
  assert.equal(r.code, 1, r.stderr);
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, "PERMISSION_DENIED", r.stdout);
  assert.match(
    err.message,
    new RegExp(`permission denied: cannot open ${locked}/Backup/\\.bsched-data\\.lock`),
  );
  assert.match(
    err.hint,
    new RegExp(`bsched runs as .*uid ${isRoot ? NOBODY : process.getuid?.()}.*access to ${locked}/Backup`),
  );
});

test("a compressed backup is refused early when the previous compressed backup's ratio says it cannot fit", {
  skip: mountSkip,
}, async (t) => {
  const { s, smallDisk } = await serverWithDisks(t);
  const disk = path.join(s.dir, "disk");
  await fs.appendFile(s.config, `    type: compressed\n    folder: ${disk}/Backup\n`);
  await smallDisk(disk, "size=4m");
  await fs.writeFile(path.join(s.data, "a.bin"), randomBytes(1_500_000));
  const first = await s.cli(["backup", "data", "--json"]);
  assert.equal(first.code, 0, first.stderr);
  // Random bytes do not compress (ratio ~1): 6.5 MB, halved for safety, is still more than ~2.5 MB free.
  await fs.writeFile(path.join(s.data, "b.bin"), randomBytes(5_000_000));
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 1, r.stderr);
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, "DISK_FULL");
  assert.match(
    err.message,
    /needed ~3\.\d MB \(compressed, estimated from the previous compressed backup; 6\.5 MB uncompressed\), free 2\.\d MB/,
  );
  assert.match(err.message, /nothing was written/);
  assert.deepEqual(await leftovers(path.join(disk, "Backup")), []);
});

test("a restore onto a full disk is DISK_FULL naming the target's file system, never a raw ENOSPC", {
  skip: mountSkip,
}, async (t) => {
  const { s, smallDisk } = await serverWithDisks(t);
  await fs.writeFile(path.join(s.data, "big.bin"), randomBytes(3_000_000));
  await s.backup();
  const target = path.join(s.dir, "small");
  await smallDisk(target, "size=2m");
  const r = await s.cli(["restore", "data", "--to", target, "--json"]);
  assert.equal(r.code, 1, r.stderr);
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, "DISK_FULL", r.stdout);
  assert.match(
    err.message,
    new RegExp(`no space left on ${target}.*free \\d\\.\\d MB \\(restore into ${target}\\)`),
  );
  assert.match(err.hint, new RegExp(`free space on ${target}`));
});
