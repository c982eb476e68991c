import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import type { Entry, Manifest, Warning } from "../src/core/types.ts";
import { CHANGED_RETRIES } from "../src/format/retry.ts";
import { separateWriter } from "../src/format/separate/writer.ts";
import type { BackupWriter, WriteJob } from "../src/format/types.ts";
import { serializeManifest } from "../src/snapshot/manifest.ts";
import { plainReader, type SourceReader } from "../src/source/reader.ts";
import { entryFromStat } from "../src/source/scan.ts";
import { type CliResult, runCli, tempDir } from "./helpers/cli.ts";
import { fileEntry, formatServer as server, TYPES, type Type } from "./helpers/formats.ts";
import { makeLiveServer, waitFor } from "./helpers/live.ts";
import type { TestServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

/**
 * The format contract: every backup type must pass the same cases (edge cases, files that change
 * while read, unreadable files; hostile manifests here and in format-contract-hostile.test.ts).
 * A new format is added to TYPES (test/helpers/formats.ts).
 */

async function writerFor(type: Type): Promise<BackupWriter> {
  if (type === "separate") return separateWriter;
  const { compressedWriter } = await import("../src/format/compressed/writer.ts");
  return compressedWriter("zstd");
}

/**
 * Write `src`'s files with `type`'s writer through a reader whose `changed()` says "moved" for the
 * first `moves[path]` reads of a file (fault injection; no small-file path, so every read is an open).
 */
async function writeWith(
  t: { after(fn: () => Promise<void>): void },
  type: Type,
  src: string,
  moves: Record<string, number>,
) {
  const tmp = await tempDir("bsched-cwr-");
  t.after(() => fs.rm(tmp, { recursive: true, force: true }));
  const inner = plainReader(src);
  const opens = new Map<string, number>();
  const reader: SourceReader = {
    async open(entry, o) {
      const n = (opens.get(entry.path) ?? 0) + 1;
      opens.set(entry.path, n);
      const f = await inner.open(entry, o);
      return { ...f, changed: async () => n <= (moves[entry.path] ?? 0) || (await f.changed()) };
    },
  };
  const files: Entry[] = [];
  for (const f of (await fs.readdir(src)).sort())
    files.push(entryFromStat(f, await fs.lstat(path.join(src, f), { bigint: true })) as Entry);
  const warnings: Warning[] = [];
  const job: WriteJob = {
    tmp,
    name: "D_2026_01_01_00_00_00",
    set: "data",
    mode: "full",
    parent: null,
    draftManifest: () => "{}",
    reader,
    dirs: [],
    files,
    symlinks: [],
    deletions: [],
    warn: (w) => warnings.push(w),
    onBytes: () => undefined,
    onFile: () => undefined,
  };
  const writer = await writerFor(type);
  try {
    const r = await writer.write(job);
    return { r, warnings, opens };
  } finally {
    // These cases stop before finish: the writer lets go of what it holds (as a cancelled run's does).
    await writer.abort?.();
  }
}

const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync("setpriv", ["--version"]).status === 0;
const NOBODY = 65534;

// Root reads any file whatever its mode, so as root the CLI runs as `nobody` (setpriv).
async function handToNobody(s: TestServer): Promise<void> {
  if (!isRoot) return;
  await fs.chmod(s.dir, 0o755);
  spawnSync("chown", ["-R", `${NOBODY}:${NOBODY}`, s.dir]);
}

function backupUnprivileged(s: TestServer): Promise<CliResult> {
  const wrap = isRoot ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"] : [];
  return runCli(["backup", "data", "--json", "--config", s.config], {
    cwd: s.dir,
    wrap,
    env: { NODE_COMPILE_CACHE: undefined },
  });
}

async function manifestWarnings(s: TestServer, name: string): Promise<Warning[]> {
  const raw = JSON.parse(await fs.readFile(path.join(s.backups, name, "manifest.json"), "utf8"));
  return raw.header.warnings;
}

for (const type of TYPES) {
  test(`format contract (${type}): empty files and folders, odd metadata, symlinks and hard links restore exactly, also through an incremental`, async (t) => {
    const s = await server(type);
    const d = (...p: string[]) => path.join(s.data, ...p);
    t.after(async () => {
      for (const ro of [d("ro"), d("ro/inner")]) await fs.chmod(ro, 0o700).catch(() => undefined);
      await fs.rm(s.dir, { recursive: true, force: true });
    });
    await fs.writeFile(d("empty"), "");
    await fs.mkdir(d("empty-dir"));
    // Before 1970 with a fraction of a second (the compressed type's tar member floors it; the
    // manifest keeps it exact).
    await fs.writeFile(d("old"), "from 1960");
    const t1960 = new Date("1960-05-06T07:08:09.123456Z");
    await fs.utimes(d("old"), t1960, t1960);
    await fs.writeFile(d("future"), "from 2200");
    await fs.utimes(d("future"), new Date("2200-01-01T00:00:00.5Z"), new Date("2200-01-01T00:00:00.5Z"));
    await fs.writeFile(d("epoch"), "at the epoch");
    await fs.utimes(d("epoch"), 0, 0);
    await fs.writeFile(d("suid"), "#!/bin/sh\n");
    await fs.chmod(d("suid"), 0o4755);
    await fs.writeFile(d("sgid"), "x");
    await fs.chmod(d("sgid"), 0o2750);
    await fs.mkdir(d("sticky"));
    await fs.chmod(d("sticky"), 0o1777);
    await fs.mkdir(d("old-dir"));
    await fs.utimes(d("old-dir"), new Date("1969-12-31T23:59:59Z"), new Date("1969-12-31T23:59:59Z"));
    await fs.writeFile(d("nomode"), "mode 000");
    await fs.chmod(d("nomode"), 0o000);
    await fs.mkdir(d("ro/inner"), { recursive: true });
    await fs.writeFile(d("ro/inner/f"), "in a read-only folder");
    await fs.chmod(d("ro/inner"), 0o555);
    await fs.chmod(d("ro"), 0o500);
    await fs.writeFile(d("big.bin"), Buffer.alloc(3 << 20, 1)); // beyond the small-file path
    await fs.symlink("future", d("link"));
    await fs.symlink("nowhere/at/all", d("dangling"));
    await fs.writeFile(d("hard-a"), "shared content");
    await fs.link(d("hard-a"), d("hard-b"));
    const snap = await snapshotTree(s.data);
    const b = await s.backup();
    assert.deepEqual(b.warnings, []);
    const out = path.join(s.dir, "out");
    const r = await s.cli(["restore", "data", "--to", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(diffTrees(snap, await snapshotTree(out)), []);
    assert.equal(await fs.readFile(path.join(out, "hard-b"), "utf8"), "shared content");
    // An incremental that adds, changes and removes.
    await fs.chmod(d("ro"), 0o700);
    await fs.writeFile(d("ro/new"), "new");
    await fs.chmod(d("ro"), 0o500);
    await fs.rm(d("link"));
    await fs.writeFile(d("empty"), "no longer empty");
    const snap2 = await snapshotTree(s.data);
    const b2 = await s.backup();
    assert.equal(b2.mode, "incremental");
    const out2 = path.join(s.dir, "out2");
    const r2 = await s.cli(["restore", "data", "--to", out2]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(diffTrees(snap2, await snapshotTree(out2)), []);
    const v = await s.cli(["verify", "data", "--json"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  test(`format contract (${type}): an empty source backs up and restores to an empty folder`, async (t) => {
    const s = await server(type);
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    const b = await s.backup();
    assert.equal(b.files, 0);
    const out = path.join(s.dir, "out");
    const r = await s.cli(["restore", "data", "--to", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fs.readdir(out), [".bsched-restored"], "only the marker naming the backup");
    const v = await s.cli(["verify", "data"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  test(`format contract (${type}): a FIFO in the source is skipped with a warning (exit 3), never read (which would hang)`, async (t) => {
    const s = await server(type);
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(s.data, "f"), "f");
    spawnSync("mkfifo", [path.join(s.data, "pipe")]);
    const r = await runCli(["backup", "data", "--json", "--config", s.config], {
      cwd: s.dir,
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /pipe: .*\[SKIPPED_SPECIAL\]/);
    assert.equal(JSON.parse(r.stdout).files, 1);
    const out = path.join(s.dir, "out");
    const rr = await s.cli(["restore", "data", "--to", out]);
    assert.equal(rr.code, 0, rr.stderr);
    assert.deepEqual((await fs.readdir(out)).sort(), [".bsched-restored", "f"]);
  });

  test(`format contract (${type}): a hostile manifest (../x, a \`from\` outside the chain) is refused by restore and named by verify`, async (t) => {
    const s = await server(type);
    const outside = await tempDir("bsched-outside-");
    t.after(async () => {
      await fs.rm(s.dir, { recursive: true, force: true });
      await fs.rm(outside, { recursive: true, force: true });
    });
    await fs.writeFile(path.join(s.data, "ok.txt"), "fine");
    const b = await s.backup();
    const dir = path.join(s.backups, b.name);
    const file = path.join(dir, "manifest.json");
    const original = await fs.readFile(file, "utf8");
    const edit = async (change: (m: Manifest) => void) => {
      const raw = JSON.parse(original);
      const m = { ...raw.header, entries: raw.entries, deletions: raw.deletions } as Manifest;
      change(m);
      await fs.writeFile(file, serializeManifest(m));
    };
    for (const [bad, pattern] of [
      [fileEntry("../x", "pwned", b.name), /"\.\.\/x"/],
      [fileEntry("y.txt", "pwned", "D_2000_01_01_00_00_00"), /D_2000_01_01_00_00_00/],
    ] as const) {
      await edit((m) => m.entries.push(bad));
      const target = path.join(outside, "target");
      const r = await s.cli(["restore", "--from", dir, "--to", target, "--json"]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(JSON.parse(r.stdout).error.code, "UNSAFE_PATH", r.stderr);
      assert.match(r.stderr, pattern);
      assert.deepEqual(await fs.readdir(outside), [], "nothing written, not even the target");
      const v = await s.cli(["verify", "data"]);
      assert.equal(v.code, 1, v.stdout);
      assert.match(v.stdout, pattern);
    }
  });

  test(`format contract (${type}): a file that keeps changing while read is read ${CHANGED_RETRIES + 1} times, kept and reported the same way`, async (t) => {
    const src = await tempDir("bsched-cwr-src-");
    t.after(() => fs.rm(src, { recursive: true, force: true }));
    await fs.writeFile(path.join(src, "busy.log"), "x".repeat(300_000));
    await fs.writeFile(path.join(src, "calm.txt"), "calm");
    const w = await writeWith(t, type, src, { "busy.log": Number.POSITIVE_INFINITY });
    assert.equal(w.opens.get("busy.log"), CHANGED_RETRIES + 1);
    assert.equal(w.opens.get("calm.txt"), 1);
    assert.deepEqual(
      w.warnings.map((x) => [x.path, x.code, x.message]),
      [
        [
          "busy.log",
          "CHANGED_WHILE_READ",
          `changed during backup: it moved while read ${CHANGED_RETRIES + 1} times; the last copy is kept and may be inconsistent`,
        ],
      ],
    );
    assert.equal(
      w.r.stored.get("busy.log")?.sha256,
      createHash("sha256").update("x".repeat(300_000)).digest("hex"),
    );
    assert.deepEqual([...w.r.failed], []);
  });

  test(`format contract (${type}): a file that settles after a retry is stored without a warning`, async (t) => {
    const src = await tempDir("bsched-cwr-src-");
    t.after(() => fs.rm(src, { recursive: true, force: true }));
    await fs.writeFile(path.join(src, "log.txt"), "line\n".repeat(60_000));
    const w = await writeWith(t, type, src, { "log.txt": 2 });
    assert.equal(w.opens.get("log.txt"), 3, "read three times: two moved, the third did not");
    assert.deepEqual(w.warnings, []);
    assert.equal(
      w.r.stored.get("log.txt")?.sha256,
      createHash("sha256").update("line\n".repeat(60_000)).digest("hex"),
    );
  });

  test(`format contract (${type}): a file appended by another process during the backup is reported, kept as a whole prefix, and the run exits 3`, async (t) => {
    const s = await makeLiveServer({ setExtra: type === "compressed" ? "    type: compressed\n" : "" });
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    const big = path.join(s.data, "growing.log");
    await fs.writeFile(path.join(s.data, "quiet.txt"), "quiet");
    await fs.writeFile(big, Buffer.alloc(24 << 20, 0x61));
    // Appends a line about every 0.2 ms for as long as it runs: every read of the file overlaps one.
    const appender = spawn(
      process.execPath,
      [
        "-e",
        `const fs=require("node:fs");const fd=fs.openSync(process.argv[1],"a");const p=new Int32Array(new SharedArrayBuffer(4));
         process.stdout.write("go\\n");for(;;){fs.writeSync(fd,"event\\n");Atomics.wait(p,0,0,0.2);}`,
        big,
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    let started = false;
    appender.stdout.on("data", () => {
      started = true;
    });
    let summary: { path: string; warnings: Warning[] };
    try {
      await waitFor("the appender", () => started);
      const r = await s.cli(["backup", "data", "--json"]);
      assert.equal(r.code, 3, r.stderr);
      summary = JSON.parse(r.stdout);
      assert.deepEqual(
        summary.warnings.map((w) => [w.path, w.code]),
        [["growing.log", "CHANGED_WHILE_READ"]],
      );
      assert.match(
        r.stderr,
        /growing\.log: changed during backup: it moved while read 4 times.*\[CHANGED_WHILE_READ\]/,
      );
    } finally {
      appender.kill("SIGKILL");
    }
    const manifest = await fs.readFile(path.join(summary.path, "manifest.json"), "utf8");
    assert.match(manifest, /CHANGED_WHILE_READ/, "the manifest records the warning");
    // The kept copy is a whole prefix of the file as it grew: the original content and some lines.
    const out = path.join(s.dir, "out");
    const rr = await s.cli(["restore", "data", "--to", out]);
    assert.equal(rr.code, 0, rr.stderr);
    const kept = await fs.readFile(path.join(out, "growing.log"));
    assert.ok(kept.length >= 24 << 20);
    assert.ok(kept.subarray(0, 24 << 20).every((c) => c === 0x61));
    assert.match(kept.subarray(24 << 20).toString(), /^(event\n)*$/);
    const v = await s.cli(["verify", "data"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  test(`format contract (${type}): an unreadable file and folder are named, recorded in the manifest (exit 3); the rest backed up, restored and verified`, {
    skip: isRoot && !hasSetpriv ? "runs as root and setpriv is missing" : false,
  }, async (t) => {
    const s = await server(type);
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(s.data, "ok1"), "one");
    await fs.mkdir(path.join(s.data, "sub"));
    await fs.writeFile(path.join(s.data, "sub/ok2"), "two");
    await fs.writeFile(path.join(s.data, "secret.db"), "no");
    await fs.mkdir(path.join(s.data, "closed"));
    await fs.writeFile(path.join(s.data, "closed/inside"), "hidden");
    await handToNobody(s);
    await fs.chmod(path.join(s.data, "secret.db"), 0o000);
    await fs.chmod(path.join(s.data, "closed"), 0o000);
    const r = await backupUnprivileged(s);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /warning: secret\.db: .*\[UNREADABLE\]/);
    assert.match(r.stderr, /warning: closed: .*\[UNREADABLE\]/);
    const sum = JSON.parse(r.stdout) as { name: string; files: number; warnings: Warning[] };
    assert.equal(sum.files, 2, "ok1 and sub/ok2 are backed up");
    assert.deepEqual(sum.warnings.map((w) => w.path).sort(), ["closed", "secret.db"]);
    assert.deepEqual((await manifestWarnings(s, sum.name)).map((w) => [w.path, w.code]).sort(), [
      ["closed", "UNREADABLE"],
      ["secret.db", "UNREADABLE"],
    ]);
    await fs.chmod(path.join(s.data, "closed"), 0o700); // so that the temp folder can be removed
    const out = path.join(s.dir, "out");
    const rr = await s.cli(["restore", "data", "--to", out]);
    assert.equal(rr.code, 0, rr.stderr);
    assert.equal(await fs.readFile(path.join(out, "ok1"), "utf8"), "one");
    assert.equal(await fs.readFile(path.join(out, "sub/ok2"), "utf8"), "two");
    const v = await s.cli(["verify", "data"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  test(`format contract (${type}): a file unreadable in an incremental keeps its previous copy, says so, and exits 3`, {
    skip: isRoot && !hasSetpriv ? "runs as root and setpriv is missing" : false,
  }, async (t) => {
    const s = await server(type);
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(s.data, "db"), "version 1");
    await fs.writeFile(path.join(s.data, "other"), "x");
    await handToNobody(s);
    const full = await backupUnprivileged(s);
    assert.equal(full.code, 0, full.stderr);
    await fs.writeFile(path.join(s.data, "db"), "version 2!");
    await fs.chmod(path.join(s.data, "db"), 0o000);
    const r = await backupUnprivileged(s);
    assert.equal(r.code, 3, r.stderr);
    const sum = JSON.parse(r.stdout) as { mode: string; warnings: Warning[] };
    assert.equal(sum.mode, "incremental");
    assert.deepEqual(sum.warnings.map((w) => `${w.path}:${w.code}`).sort(), [
      "db:KEPT_PREVIOUS",
      "db:UNREADABLE",
    ]);
    assert.match(r.stderr, /db: .*kept/);
    const out = path.join(s.dir, "out");
    const rr = await s.cli(["restore", "data", "--to", out]);
    assert.equal(rr.code, 0, rr.stderr);
    assert.equal(await fs.readFile(path.join(out, "db"), "utf8"), "version 1");
    const v = await s.cli(["verify", "data"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
}
