import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fsSync from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { describe, test } from "node:test";
import { runBackup } from "../src/backup/run.ts";
import { getSet, parseConfig } from "../src/config/load.ts";
import { systemClock } from "../src/platform/clock.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree, type TreeRecord } from "./helpers/tree.ts";

/** The POSIX tools a self-extracting file may use; node is deliberately not among them. */
const SH_TOOLS = [
  "tail",
  "tar",
  "mkdir",
  "rm",
  "cat",
  "wc",
  "tr",
  "cut",
  "sed",
  "awk",
  "mv",
  "ls",
  "find",
  "chmod",
  "sha256sum",
];

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
  // No room at all: the manifest always outgrows it (an option of runBackup, not an env hook).
  const config = parseConfig(await fs.readFile(s.config, "utf8"), s.config);
  const { summary: b } = await runBackup({
    set: getSet(config, "data"),
    timezone: config.timezone,
    clock: systemClock,
    onNotice: () => {},
    compressedManifestReserve: 0,
  });
  const out = path.join(s.dir, "out-re");
  assert.equal((await s.cli(["restore", "data", "--to", out])).code, 0);
  assert.deepEqual(diffTrees(expected, await snapshotTree(out)), []);
  const c = await runSh(path.join(b.path, `${b.name}.sh`), ["--check"]);
  assert.equal(c.code, 0, c.out);
});

/** Every name under `dir`, hidden ones and the restore marker included (snapshotTree leaves it out). */
async function allNames(dir: string): Promise<string[]> {
  return (await fs.readdir(dir, { recursive: true })).map(String).sort();
}

/** Incompressible bytes, so that an offset of the file lands in a known member. */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

for (const compression of ["zstd", "gzip"] as const) {
  test(`sh --target checks the whole payload first: damage leaves the target as it was (${compression})`, async (t) => {
    const s = await compressedServer(compression);
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(s.data, "a.txt"), "first");
    await fs.writeFile(path.join(s.data, "x.db"), noise(2 << 20, 7));
    await fs.mkdir(path.join(s.data, "z"));
    await fs.writeFile(path.join(s.data, "z", "late.txt"), "after x.db in the payload");
    const b = await s.backup();
    const file = path.join(b.path, `${b.name}.sh`);
    const size = (await fs.stat(file)).size;
    const pristine = path.join(s.dir, "pristine.sh");
    await fs.copyFile(file, pristine);

    // A target that already holds something, and one that does not exist yet.
    const restoreRoot = path.join(s.dir, "restore");
    const target = path.join(restoreRoot, "Data");
    await fs.mkdir(target, { recursive: true });
    await fs.writeFile(path.join(target, "keep.txt"), "was here");
    const fresh = path.join(restoreRoot, "Fresh");
    const before = await snapshotTree(target);
    const namesBefore = await allNames(restoreRoot);

    // One flipped byte in the middle of x.db's content.
    const fh = await fs.open(file, "r+");
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, size - (1 << 20));
    one[0] = (one[0] as number) ^ 0xff;
    await fh.write(one, 0, 1, size - (1 << 20));
    await fh.close();
    for (const dir of [target, fresh]) {
      const r = await runSh(file, ["--target", dir]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /member x\.db: sha256 mismatch/);
      assert.match(r.out, /nothing was written into/);
      assert.deepEqual(diffTrees(before, await snapshotTree(target)), []);
      assert.deepEqual(await allNames(restoreRoot), namesBefore, "target untouched, staging removed");
    }

    // Cut short by 1000 bytes: refused before anything is extracted.
    await fs.copyFile(pristine, file);
    await fs.truncate(file, size - 1000);
    const r2 = await runSh(file, ["--target", target]);
    assert.equal(r2.code, 1, r2.out);
    assert.match(r2.out, /payload truncated \(\d+ of \d+ bytes\)/);
    assert.deepEqual(diffTrees(before, await snapshotTree(target)), []);
    assert.deepEqual(await allNames(restoreRoot), namesBefore);

    // The intact file extracts, and leaves the marker naming the backup and its manifest digest.
    await fs.copyFile(pristine, file);
    const ok = await runSh(file, ["--target", fresh]);
    assert.equal(ok.code, 0, ok.out);
    const marker = await fs.readFile(path.join(fresh, ".bsched-restored"), "utf8");
    assert.match(marker, new RegExp(`^backup=${b.name}$`, "m"));
    const digest = createHash("sha256")
      .update(await fs.readFile(path.join(b.path, "manifest.json")))
      .digest("hex");
    assert.match(marker, new RegExp(`^digest=${digest}$`, "m"));
    assert.deepEqual(
      (await allNames(restoreRoot)).filter((n) => n.startsWith(".")),
      [],
      "no staging folder left",
    );

    // No sha256 tool: refused (exit 3) unless --no-check, which still refuses a damaged payload.
    const noSha = SH_TOOLS.filter((x) => x !== "sha256sum").concat(compression);
    const other = path.join(restoreRoot, "Other");
    const n1 = await runSh(file, ["--target", other], noSha);
    assert.equal(n1.code, 3, n1.out);
    assert.match(n1.out, /no sha256 tool/);
    assert.equal(fsSync.existsSync(other), false);
    await fs.truncate(file, size - 1000);
    assert.equal((await runSh(file, ["--target", other, "--no-check"], noSha)).code, 1);
    assert.equal(fsSync.existsSync(other), false);
    await fs.copyFile(pristine, file);
    const n2 = await runSh(file, ["--target", other, "--no-check"], noSha);
    assert.equal(n2.code, 0, n2.out);
    assert.equal(await fs.readFile(path.join(other, "z", "late.txt"), "utf8"), "after x.db in the payload");
  });
}

test("sh INCREMENTAL.sh --target refuses a folder not at its parent's state, with the order to follow", async (t) => {
  const s = await compressedServer("zstd");
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const d = (...p: string[]) => path.join(s.data, ...p);
  await fs.writeFile(d("a.txt"), "one");
  await fs.writeFile(d("gone.txt"), "deleted in the second");
  const b1 = await s.backup();
  await fs.writeFile(d("b.txt"), "two");
  await fs.rm(d("gone.txt"));
  const b2 = await s.backup();
  await fs.writeFile(d("c.txt"), "three");
  await fs.appendFile(d("a.txt"), " and more");
  const b3 = await s.backup();
  assert.deepEqual([b2.parent, b3.parent], [b1.name, b2.name]);
  const sh = (b: { name: string; path: string }) => path.join(b.path, `${b.name}.sh`);

  // No marker (an empty, new folder): refused, the whole chain printed oldest first; nothing made.
  const empty = path.join(s.dir, "empty");
  const r1 = await runSh(sh(b3), ["--target", empty]);
  assert.equal(r1.code, 1, r1.out);
  assert.match(r1.out, /holds no restored state/);
  // Printed as paths to the files (beside each other in their backup folders).
  const order = [b1.name, b2.name, b3.name].map((n) => r1.out.indexOf(`${n}.sh --target ${empty}\n`));
  assert.ok(
    order.every((i, k) => i >= 0 && (k === 0 || i > (order[k - 1] as number))),
    r1.out,
  );
  assert.ok(fsSync.existsSync(r1.out.match(/sh (\S+) --target/)?.[1] ?? ""), r1.out);
  assert.equal(fsSync.existsSync(empty), false);

  // At the full, not at b2: only the rest of the chain is printed.
  const skipped = path.join(s.dir, "skipped");
  assert.equal((await runSh(sh(b1), ["--target", skipped])).code, 0);
  const before = await allNames(skipped);
  const r2 = await runSh(sh(b3), ["--target", skipped]);
  assert.equal(r2.code, 1, r2.out);
  assert.match(r2.out, new RegExp(`is at ${b1.name}`));
  assert.match(r2.out, new RegExp(`${b2.name}\\.sh --target`));
  assert.doesNotMatch(r2.out, new RegExp(`${b1.name}\\.sh --target`));
  assert.deepEqual(await allNames(skipped), before);

  // --force applies it anyway (and says so).
  const r3 = await runSh(sh(b3), ["--target", skipped, "--force"]);
  assert.equal(r3.code, 0, r3.out);
  assert.match(r3.out, /--force/);
  assert.equal(await fs.readFile(path.join(skipped, "c.txt"), "utf8"), "three");

  // The proper order gives what bsched restore gives.
  const manual = path.join(s.dir, "manual");
  for (const b of [b1, b2, b3]) {
    const r = await runSh(sh(b), ["--target", manual]);
    assert.equal(r.code, 0, r.out);
  }
  const out = path.join(s.dir, "out");
  const rr = await s.cli(["restore", "data", "--to", out]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.deepEqual(diffTrees(toSeconds(await snapshotTree(out)), toSeconds(await snapshotTree(manual))), []);
  assert.equal(fsSync.existsSync(path.join(manual, "gone.txt")), false);

  // bsched restore leaves the same marker: the manual procedure goes on from it, and the marker
  // in a source folder is never backed up.
  const marker = await fs.readFile(path.join(out, ".bsched-restored"), "utf8");
  assert.equal(marker, await fs.readFile(path.join(manual, ".bsched-restored"), "utf8"));
  await fs.copyFile(path.join(out, ".bsched-restored"), d(".bsched-restored"));
  await fs.writeFile(d("d.txt"), "four");
  const b4 = await s.backup();
  const m4 = await fs.readFile(path.join(b4.path, "manifest.json"), "utf8");
  assert.doesNotMatch(m4, /bsched-restored/);
  await fs.rm(d(".bsched-restored"));
  const r4 = await runSh(sh(b4), ["--target", out]);
  assert.equal(r4.code, 0, r4.out);
  assert.deepEqual(diffTrees(toSeconds(await snapshotTree(s.data)), toSeconds(await snapshotTree(out))), []);
});

test("bsched restore --overwrite that finds damage leaves no marker naming the old state", async (t) => {
  const s = await makeServer({ prefix: "bsched-marker-" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "a.txt"), "one");
  const b = await s.backup();
  const out = path.join(s.dir, "out");
  assert.equal((await s.cli(["restore", "data", "--to", out])).code, 0);
  assert.match(
    await fs.readFile(path.join(out, ".bsched-restored"), "utf8"),
    new RegExp(`^backup=${b.name}$`, "m"),
  );
  await fs.writeFile(path.join(b.path, "files", "a.txt"), "two");
  const r = await s.cli(["restore", "data", "--to", out, "--overwrite"]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(fsSync.existsSync(path.join(out, ".bsched-restored")), false);
});
