import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import type { Manifest } from "../src/core/types.ts";
import { serializeManifest } from "../src/snapshot/manifest.ts";
import { type CliResult, runCli, tempDir } from "./helpers/cli.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";

// A backup folder is untrusted input: its content is read only from regular files inside it. A
// link (files/ itself, the stored file, the .sh, manifest.json) or a FIFO where a stored file
// should be is damage, named, never followed, never waited on. A hang would block the suite: every
// CLI run here is killed after LIMIT, and a killed run (exit code null) fails the test.
const LIMIT = 120_000;

interface Problem {
  backup: string;
  path?: string;
  problem: string;
}

function run(s: TestServer, args: string[]): Promise<CliResult> {
  return runCli([...args, "--config", s.config], { cwd: s.dir, timeoutMs: LIMIT });
}

let targets = 0;

/** restore refuses (exit 1, UNSAFE_PATH or MANIFEST_INVALID, naming `what`), verify lists it as damage. */
async function expectDamage(s: TestServer, backupDir: string, what: RegExp): Promise<void> {
  const target = path.join(s.dir, `target-${++targets}`);
  const r = await run(s, ["restore", "--from", backupDir, "--to", target, "--json"]);
  assert.notEqual(r.code, null, `restore hung: ${r.stderr}`);
  assert.equal(r.code, 1, r.stderr);
  const code = (JSON.parse(r.stdout) as { error?: { code: string } }).error?.code;
  assert.ok(code === "UNSAFE_PATH" || code === "MANIFEST_INVALID", `refused, not ${code}: ${r.stdout}`);
  assert.match(r.stderr, what);
  const v = await run(s, ["verify", "data", "--json"]);
  assert.notEqual(v.code, null, `verify hung: ${v.stderr}`);
  assert.equal(v.code, 1, v.stdout);
  const problems = (JSON.parse(v.stdout) as { problems: Problem[] }).problems;
  assert.ok(
    problems.some((p) => what.test(`${p.path ?? ""}: ${p.problem}`)),
    `verify names it: ${JSON.stringify(problems)}`,
  );
}

/** A server with one backup of set data (a small file in a folder, a file too large to read whole). */
async function oneBackup(t: { after(fn: () => Promise<void>): void }, setKeys: string[] = []) {
  const s = await makeServer({ mode: "full", setKeys });
  const outside = await tempDir("bsched-outside-");
  t.after(async () => {
    await fs.rm(s.dir, { recursive: true, force: true });
    await fs.rm(outside, { recursive: true, force: true });
  });
  await fs.mkdir(path.join(s.data, "sub"));
  await fs.writeFile(path.join(s.data, "sub/small.txt"), "small");
  await fs.writeFile(path.join(s.data, "big.bin"), Buffer.alloc(300 * 1024, 7));
  const b = await s.backup();
  const dir = path.join(s.backups, b.name);
  // A pristine copy, put back before each case.
  const pristine = path.join(outside, "pristine");
  execFileSync("cp", ["-a", dir, pristine]);
  const reset = async () => {
    await fs.rm(dir, { recursive: true, force: true });
    execFileSync("cp", ["-a", pristine, dir]);
  };
  return { s, b, dir, outside, reset };
}

/** Replace `p` by a symlink to an identical copy outside the backup (a reader that follows it sees no damage). */
async function swapForLink(p: string, outside: string, name: string): Promise<void> {
  const copy = path.join(outside, name);
  execFileSync("cp", ["-a", p, copy]);
  await fs.rm(p, { recursive: true });
  await fs.symlink(copy, p);
}

async function swapForFifo(p: string): Promise<void> {
  await fs.rm(p, { recursive: true });
  execFileSync("mkfifo", [p]);
}

test("separate: files/ a link, a stored file a link, stored files FIFOs: refused and reported, never followed nor waited on", {
  timeout: 900_000,
}, async (t) => {
  const { s, dir, outside, reset } = await oneBackup(t);

  await swapForLink(path.join(dir, "files"), outside, "files-copy");
  await expectDamage(s, dir, /files is a symlink/);

  await reset();
  await swapForLink(path.join(dir, "files/sub/small.txt"), outside, "small-copy");
  await expectDamage(s, dir, /sub\/small\.txt.*is a symlink/);

  // Both read paths: a small file read whole, a larger one streamed.
  await reset();
  await swapForFifo(path.join(dir, "files/sub/small.txt"));
  await expectDamage(s, dir, /sub\/small\.txt.*is a FIFO/);
  await reset();
  await swapForFifo(path.join(dir, "files/big.bin"));
  await expectDamage(s, dir, /big\.bin.*is a FIFO/);

  // The pristine backup restores and verifies.
  await reset();
  const v = await run(s, ["verify", "data"]);
  assert.equal(v.code, 0, v.stderr);
});

test("compressed: the .sh a link or a FIFO is refused and reported, never followed nor waited on", {
  timeout: 900_000,
}, async (t) => {
  const { s, b, dir, outside, reset } = await oneBackup(t, ["type: compressed"]);
  const sh = path.join(dir, `${b.name}.sh`);

  await swapForLink(sh, outside, "copy.sh");
  await expectDamage(s, dir, /\.sh is a symlink/);

  await reset();
  await swapForFifo(sh);
  await expectDamage(s, dir, /\.sh is a FIFO/);

  // Given directly as --from, a FIFO is refused too.
  const r = await run(s, ["verify", "--from", sh]);
  assert.notEqual(r.code, null, "verify --from a FIFO hung");
  assert.equal(r.code, 1);
  assert.match(r.stdout + r.stderr, /\.sh is a FIFO/);
});

test("manifest.json a FIFO or a link: refused by restore, reported by verify, noted by list; none hangs", {
  timeout: 900_000,
}, async (t) => {
  const { s, b, dir, outside, reset } = await oneBackup(t);
  const manifest = path.join(dir, "manifest.json");

  await swapForFifo(manifest);
  await expectDamage(s, dir, /manifest\.json is a FIFO/);
  const l = await run(s, ["list", "data"]);
  assert.notEqual(l.code, null, "list hung");
  assert.match(l.stdout + l.stderr, new RegExp(`${b.name}.*manifest\\.json is a FIFO`));

  await reset();
  await swapForLink(manifest, outside, "manifest-copy.json");
  await expectDamage(s, dir, /manifest\.json is a symlink/);
});

test("a backup folder that is itself a link (an administrator's) is used; what lies inside it is checked", {
  timeout: 900_000,
}, async (t) => {
  const { s, b, dir, outside } = await oneBackup(t);
  const moved = path.join(outside, b.name);
  execFileSync("mv", [dir, moved]);
  await fs.symlink(moved, dir);
  const v = await run(s, ["verify", "data", "--json"]);
  assert.equal(v.code, 0, v.stdout);
  assert.equal((JSON.parse(v.stdout) as { files: number }).files, 2);
  const target = path.join(s.dir, "target");
  const r = await run(s, ["restore", "--from", dir, "--to", target]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await fs.readFile(path.join(target, "sub/small.txt"), "utf8"), "small");
});

async function editManifest(backupDir: string, edit: (m: Manifest) => void): Promise<void> {
  const file = path.join(backupDir, "manifest.json");
  const raw = JSON.parse(await fs.readFile(file, "utf8"));
  const m = { ...raw.header, entries: raw.entries, deletions: raw.deletions } as Manifest;
  edit(m);
  await fs.writeFile(file, serializeManifest(m));
}

test("a manifest whose set or letter does not match its folder is refused by restore, verify and list", {
  timeout: 900_000,
}, async (t) => {
  const { s, b, dir, reset } = await oneBackup(t);

  // The folder D_… of set data holds a manifest of set archive.
  await editManifest(dir, (m) => {
    m.set = "archive";
  });
  const l = await run(s, ["list", "data", "--json"]);
  assert.equal(l.code, 0, l.stderr);
  // Not a usable backup of set data: listed only as broken, with why (issue 9 item 2).
  assert.deepEqual(
    (JSON.parse(l.stdout) as { name: string; state: string; type: string | null }[]).map((x) => [
      x.name,
      x.state,
      x.type,
    ]),
    [[b.name, "broken", null]],
    "not listed as a usable backup of set data",
  );
  assert.match(l.stderr, new RegExp(`${b.name}.*set archive`), "but named, not silently skipped");
  const r = await run(s, ["restore", "data", "--backup", b.name, "--to", path.join(s.dir, "t1"), "--json"]);
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).error.code, "MANIFEST_INVALID");
  assert.match(r.stderr, new RegExp(b.name));
  const v = await run(s, ["verify", "data", "--json"]);
  assert.equal(v.code, 1);
  const problems = (JSON.parse(v.stdout) as { problems: Problem[] }).problems;
  assert.ok(
    problems.some((p) => p.backup === b.name && /set archive/.test(p.problem)),
    JSON.stringify(problems),
  );

  // The folder D_… holds a manifest of letter A.
  await reset();
  await editManifest(dir, (m) => {
    m.letter = "A";
  });
  const r2 = await run(s, ["restore", "--from", dir, "--to", path.join(s.dir, "t2"), "--json"]);
  assert.equal(r2.code, 1);
  assert.equal(JSON.parse(r2.stdout).error.code, "MANIFEST_INVALID");
  assert.match(r2.stderr, /letter A/);
  const v2 = await run(s, ["verify", "--from", dir]);
  assert.equal(v2.code, 1);
  assert.match(v2.stdout + v2.stderr, /letter A/);
  const l2 = await run(s, ["list", "data"]);
  assert.match(l2.stdout + l2.stderr, new RegExp(`${b.name}.*letter A`));
});
