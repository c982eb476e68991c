import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { type CliResult, runCli, tempDir } from "./helpers/cli.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";

// A backup folder is untrusted input: its content is read only from regular files inside it. A
// link (files/ itself, the stored file, the .sh) or a FIFO where a stored file should be is
// damage, named, never followed, never waited on. These cases are each type's own stored layout;
// those about manifest.json, the same for every type, are in format-contract-hostile.test.ts. A
// hang would block the suite: every CLI run here is killed after LIMIT, and a killed run (exit
// code null) fails the test.
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

test("separate: a symlink planted where a stored folder was is not read through", async (t) => {
  const { s, b, outside } = await oneBackup(t);
  const target = path.join(s.dir, "target");
  // The attacker swaps the stored folder for a link to a folder holding another "small.txt".
  await fs.writeFile(path.join(outside, "small.txt"), "a file from outside the backup");
  const stored = path.join(s.backups, b.name, "files/sub");
  await fs.rm(stored, { recursive: true });
  await fs.symlink(outside, stored);
  const r = await run(s, ["restore", "data", "--to", target]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /sub\/small\.txt/);
  const restored = await fs.readFile(path.join(target, "sub/small.txt"), "utf8").catch(() => "(absent)");
  assert.notEqual(
    restored,
    "a file from outside the backup",
    "content from outside the backup is not restored",
  );
  const v = await run(s, ["verify", "data"]);
  assert.equal(v.code, 1);
  assert.match(v.stdout, /sub\/small\.txt/);
});
