import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fsSync from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { describe, test } from "node:test";
import { makeServer, type TestServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree, type TreeRecord } from "./helpers/tree.ts";

/** The POSIX tools a self-extracting file may use; node is deliberately not among them. */
const SH_TOOLS = ["tail", "tar", "mkdir", "rm", "cat", "wc", "tr", "cut", "sed", "sha256sum"];

/** A folder of links to `tools` only, to serve as the whole PATH. */
async function toolsOnly(dir: string, tools: string[]): Promise<string> {
  const bin = await fs.mkdtemp(path.join(dir, "bin-"));
  for (const tool of tools) {
    const found = [`/usr/bin/${tool}`, `/bin/${tool}`].find((p) => fsSync.existsSync(p));
    if (found) await fs.symlink(found, path.join(bin, tool));
  }
  return bin;
}

/** Run a self-extracting file with `env -i` and a PATH of the POSIX tools and the decompressors only (no node). */
async function runSh(
  file: string,
  args: string[],
  tools = [...SH_TOOLS, "zstd", "gzip"],
): Promise<{ code: number | null; out: string }> {
  const bin = await toolsOnly(path.dirname(file), tools);
  try {
    return await new Promise((resolve, reject) => {
      const p = spawn("/bin/sh", [file, ...args], { env: { PATH: bin }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      p.stdout.on("data", (d) => {
        out += d;
      });
      p.stderr.on("data", (d) => {
        out += d;
      });
      p.on("error", reject);
      p.on("close", (code) => resolve({ code, out }));
    });
  } finally {
    await fs.rm(bin, { recursive: true, force: true });
  }
}

function compressedServer(compression: "zstd" | "gzip"): Promise<TestServer> {
  return makeServer({
    prefix: `bsched-cz-${compression}-`,
    setKeys: ["type: compressed", `compression: ${compression}`],
  });
}

/** tar keeps whole seconds: compare what the self-extractor can promise. */
function toSeconds(t: Map<string, TreeRecord>): Map<string, TreeRecord> {
  return new Map([...t].map(([p, r]) => [p, { ...r, mtimeUs: Math.floor(r.mtimeUs / 1e6) }]));
}

async function fillTree(data: string): Promise<void> {
  const d = (...p: string[]) => path.join(data, ...p);
  await fs.mkdir(d("deep", "x".repeat(60), "y".repeat(60)), { recursive: true });
  await fs.mkdir(d("empty"));
  await fs.mkdir(d("ro"), { mode: 0o755 });
  await fs.writeFile(d("deep", "x".repeat(60), "y".repeat(60), "long-name-over-100-bytes.txt"), "long path");
  await fs.writeFile(d("é 漢字 ✓.txt"), "unicode");
  await fs.writeFile(d("it's quoted"), "quote");
  await fs.writeFile(d("-dash"), "dash");
  await fs.writeFile(d("new\nline"), "newline");
  await fs.writeFile(d("ro", "file"), "read-only folder content");
  await fs.chmod(d("ro"), 0o555);
  // Larger than one compression frame (4 MiB), compressible but not trivially.
  const big = Buffer.alloc(9 << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(((i * 2654435761) >>> 0) >>> (i % 13), i);
  await fs.writeFile(d("big.db"), big);
  for (let i = 0; i < 300; i++) await fs.writeFile(d("deep", `f${i}.log`), `event ${i}\n`.repeat(i));
  await fs.symlink("big.db", d("link"));
  await fs.writeFile(d("mode.sh"), "#!/bin/sh\n", { mode: 0o750 });
}

async function changeTree(data: string): Promise<void> {
  const d = (...p: string[]) => path.join(data, ...p);
  await fs.appendFile(d("deep", "f10.log"), "appended\n");
  await fs.rm(d("deep", "f11.log"));
  await fs.rm(d("empty"), { recursive: true });
  await fs.writeFile(d("empty"), "now a file");
  await fs.rm(d("link"));
  await fs.symlink("mode.sh", d("link"));
  await fs.chmod(d("mode.sh"), 0o700);
  await fs.writeFile(d("added.txt"), "added");
  await fs.rename(d("deep", "x".repeat(60)), d("deep", "renamed"));
}

for (const compression of ["zstd", "gzip"] as const) {
  describe(`compressed backups (${compression})`, () => {
    test("full and incremental restore exactly, by bsched and by sh alone", async () => {
      const s = await compressedServer(compression);
      await fillTree(s.data);
      const p1 = await snapshotTree(s.data);
      const b1 = await s.backup();
      assert.equal(b1.mode, "full");
      const files1 = await fs.readdir(b1.path);
      assert.deepEqual(files1.sort(), [`${b1.name}.sh`, "manifest.json"]);
      const st = await fs.stat(path.join(b1.path, `${b1.name}.sh`));
      assert.ok(st.mode & 0o100, "the self-extracting file is executable");

      await changeTree(s.data);
      const p2 = await snapshotTree(s.data);
      const b2 = await s.backup();
      assert.equal(b2.mode, "incremental");
      assert.equal(b2.parent, b1.name);
      assert.ok(b2.storedFiles < 10, `an incremental stores only what changed (stored ${b2.storedFiles})`);

      // bsched restores both points exactly (to the microsecond).
      for (const [name, expected] of [
        [b1.name, p1],
        [b2.name, p2],
      ] as const) {
        const out = path.join(s.dir, `out-${name}`);
        const r = await s.cli(["restore", "data", "--backup", name, "--to", out]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(diffTrees(expected, await snapshotTree(out)), []);
      }

      // sh alone, oldest first into one folder, gives the newest state (deletions applied).
      const manual = path.join(s.dir, "manual");
      for (const b of [b1, b2]) {
        const r = await runSh(path.join(b.path, `${b.name}.sh`), ["--target", manual]);
        assert.equal(r.code, 0, r.out);
      }
      assert.deepEqual(diffTrees(toSeconds(p2), toSeconds(await snapshotTree(manual))), []);

      // --list and --check work with no bsched.
      const list = await runSh(path.join(b1.path, `${b1.name}.sh`), ["--list"]);
      assert.equal(list.code, 0, list.out);
      assert.match(list.out, /big\.db/);
      const check = await runSh(path.join(b2.path, `${b2.name}.sh`), ["--check"]);
      assert.equal(check.code, 0, check.out);
      assert.match(check.out, /^ok: /m);

      const v = await s.cli(["verify", "data"]);
      assert.equal(v.code, 0, v.stderr);
    });

    test("a flipped byte and a truncated file are caught by verify and --check", async () => {
      const s = await compressedServer(compression);
      await fillTree(s.data);
      const b = await s.backup();
      const file = path.join(b.path, `${b.name}.sh`);
      const size = (await fs.stat(file)).size;
      const copy = path.join(s.dir, "pristine.sh");
      await fs.copyFile(file, copy);

      const fh = await fs.open(file, "r+");
      const one = Buffer.alloc(1);
      await fh.read(one, 0, 1, size - 200_000);
      one[0] = (one[0] as number) ^ 0xff;
      await fh.write(one, 0, 1, size - 200_000);
      await fh.close();
      const v = await s.cli(["verify", "data", "--json"]);
      assert.equal(v.code, 1, v.stderr);
      const report = JSON.parse(v.stdout);
      assert.equal(report.ok, false);
      assert.ok(report.problems.some((p: { backup: string }) => p.backup === b.name));
      assert.match(v.stderr, new RegExp(b.name));
      const c = await runSh(file, ["--check"]);
      assert.notEqual(c.code, 0);
      assert.match(c.out, /DAMAGED/);

      await fs.copyFile(copy, file);
      await fs.truncate(file, size - 1000);
      const v2 = await s.cli(["verify", "data"]);
      assert.equal(v2.code, 1);
      assert.match(v2.stdout, /truncated/);
      const c2 = await runSh(file, ["--check"]);
      assert.notEqual(c2.code, 0);
      assert.match(c2.out, /DAMAGED/);
    });
  });
}

test("mixed chains: separate full, compressed incremental, separate incremental, and the reverse", async () => {
  const s = await makeServer({ prefix: "bsched-mixed-" });
  await fillTree(s.data);
  const a1 = await s.backup(["--type", "separate", "--mode", "full"]);
  await changeTree(s.data);
  const a2 = await s.backup(["--type", "compressed"]);
  await fs.writeFile(path.join(s.data, "third.txt"), "third");
  await fs.appendFile(path.join(s.data, "added.txt"), " and more");
  const expected = await snapshotTree(s.data);
  const a3 = await s.backup(["--type", "separate"]);
  assert.deepEqual([a2.parent, a3.parent], [a1.name, a2.name]);
  const out = path.join(s.dir, "out-mixed");
  const r = await s.cli(["restore", "data", "--to", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(diffTrees(expected, await snapshotTree(out)), []);

  const c1 = await s.backup(["--type", "compressed", "--mode", "full"]);
  await fs.writeFile(path.join(s.data, "fourth.txt"), "fourth");
  const expected2 = await snapshotTree(s.data);
  const c2 = await s.backup(["--type", "separate"]);
  assert.equal(c2.parent, c1.name);
  const out2 = path.join(s.dir, "out-mixed-2");
  const r2 = await s.cli(["restore", "data", "--to", out2]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(diffTrees(expected2, await snapshotTree(out2)), []);
  const v = await s.cli(["verify", "data"]);
  assert.equal(v.code, 0, v.stderr);
});

test("self-extracting files copied alone restore with `restore --from FILE` and no config", async () => {
  const s = await compressedServer("zstd");
  await fillTree(s.data);
  const b1 = await s.backup();
  await changeTree(s.data);
  const expected = await snapshotTree(s.data);
  const b2 = await s.backup();
  const usb = path.join(s.dir, "usb");
  await fs.mkdir(usb);
  for (const b of [b1, b2])
    await fs.copyFile(path.join(b.path, `${b.name}.sh`), path.join(usb, `${b.name}.sh`));
  const out = path.join(s.dir, "out-usb");
  const r = await s.cli(["restore", "--from", path.join(usb, `${b2.name}.sh`), "--to", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(diffTrees(expected, await snapshotTree(out)), []);

  const v = await s.cli(["verify", "--from", path.join(usb, `${b2.name}.sh`)]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /verified 2 backup\(s\).*no damage found/);

  await fs.rm(path.join(usb, `${b1.name}.sh`));
  const broken = await s.cli([
    "restore",
    "--from",
    path.join(usb, `${b2.name}.sh`),
    "--to",
    path.join(s.dir, "out-broken"),
  ]);
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, new RegExp(`needs its parent ${b1.name}`));
});

test("a missing decompressor is named, with how to restore instead", async () => {
  const s = await compressedServer("zstd");
  await fillTree(s.data);
  const b = await s.backup();
  // A PATH with the POSIX tools the script uses but no zstd.
  const r = await runSh(path.join(b.path, `${b.name}.sh`), ["--target", path.join(s.dir, "x")], SH_TOOLS);
  assert.equal(r.code, 3, r.out);
  assert.match(r.out, /compressed with zstd, which is not installed/);
  assert.match(r.out, /bsched restore --from/);
});

test("a manifest that outgrows its reserved room still gives a valid file", async () => {
  const s = await compressedServer("zstd");
  await fillTree(s.data);
  const expected = await snapshotTree(s.data);
  const r = await s.cli(["backup", "data", "--json"], { BSCHED_TEST_MANIFEST_RESERVE: "0" });
  assert.equal(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout);
  const out = path.join(s.dir, "out-re");
  assert.equal((await s.cli(["restore", "data", "--to", out])).code, 0);
  assert.deepEqual(diffTrees(expected, await snapshotTree(out)), []);
  const c = await runSh(path.join(b.path, `${b.name}.sh`), ["--check"]);
  assert.equal(c.code, 0, c.out);
});
