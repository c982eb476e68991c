import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
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
import { runCli, tempDir } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

/**
 * The format contract: every backup type must pass the same cases (edge cases, hostile manifests,
 * files that change while read, unreadable files). A new format is added to TYPES.
 */
const TYPES = ["separate", "compressed"] as const;
type Type = (typeof TYPES)[number];

const server = (type: Type, mode: "full" | "incremental" = "incremental") =>
  makeServer({ mode, setKeys: type === "compressed" ? ["type: compressed"] : [] });

async function writerFor(type: Type): Promise<BackupWriter> {
  if (type === "separate") return separateWriter;
  const { compressedWriter } = await import("../src/format/compressed/writer.ts");
  return compressedWriter("zstd");
}

const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync("setpriv", ["--version"]).status === 0;
const NOBODY = 65534;

for (const type of TYPES) {
  test(`format contract (${type}): empty files and folders, odd metadata, symlinks and hard links restore exactly, also through an incremental`, async (t) => {
    const s = await server(type);
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    const d = (...p: string[]) => path.join(s.data, ...p);
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
    await fs.writeFile(d("nomode"), "mode 000");
    await fs.chmod(d("nomode"), 0o000);
    await fs.mkdir(d("ro/inner"), { recursive: true });
    await fs.writeFile(d("ro/inner/f"), "in a read-only folder");
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
    await fs.chmod(d("ro"), 0o700);
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
    const entry = (p: string, from: string): Entry => ({
      path: p,
      kind: "file",
      mode: 0o644,
      mtimeNs: "1600000000000000000",
      uid: 0,
      gid: 0,
      size: 5,
      sha256: createHash("sha256").update("pwned").digest("hex"),
      from,
    });
    for (const [bad, pattern] of [
      [entry("../x", b.name), /"\.\.\/x"/],
      [entry("y.txt", "D_2000_01_01_00_00_00"), /D_2000_01_01_00_00_00/],
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
    const tmp = await tempDir("bsched-cwr-");
    t.after(async () => {
      await fs.rm(src, { recursive: true, force: true });
      await fs.rm(tmp, { recursive: true, force: true });
    });
    await fs.writeFile(path.join(src, "busy.log"), "x".repeat(300_000));
    await fs.writeFile(path.join(src, "calm.txt"), "calm");
    const inner = plainReader(src);
    const opens = new Map<string, number>();
    // Fault injection: the busy file always says it moved; no small-file path, so every read is an open.
    const reader: SourceReader = {
      async open(entry, o) {
        const n = (opens.get(entry.path) ?? 0) + 1;
        opens.set(entry.path, n);
        const s = await inner.open(entry, o);
        return { ...s, changed: async () => entry.path === "busy.log" || (await s.changed()) };
      },
    };
    const files: Entry[] = [];
    for (const f of ["busy.log", "calm.txt"])
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
    const r = await (await writerFor(type)).write(job);
    assert.equal(opens.get("busy.log"), CHANGED_RETRIES + 1);
    assert.equal(opens.get("calm.txt"), 1);
    assert.deepEqual(
      warnings.map((w) => [w.path, w.code, w.message]),
      [
        [
          "busy.log",
          "CHANGED_WHILE_READ",
          `changed during backup: it moved while read ${CHANGED_RETRIES + 1} times; the last copy is kept and may be inconsistent`,
        ],
      ],
    );
    assert.equal(
      r.stored.get("busy.log")?.sha256,
      createHash("sha256").update("x".repeat(300_000)).digest("hex"),
    );
    assert.deepEqual([...r.failed], []);
  });

  test(`format contract (${type}): an unreadable file is named (exit 3), the rest backed up, restored and verified`, {
    skip: isRoot && !hasSetpriv ? "runs as root and setpriv is missing" : false,
  }, async (t) => {
    const s = await server(type);
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(s.data, "ok1"), "one");
    await fs.writeFile(path.join(s.data, "secret.db"), "no");
    if (isRoot) {
      await fs.chmod(s.dir, 0o755);
      spawnSync("chown", ["-R", `${NOBODY}:${NOBODY}`, s.dir]);
    }
    await fs.chmod(path.join(s.data, "secret.db"), 0o000);
    const wrap = isRoot ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"] : [];
    const r = await runCli(["backup", "data", "--json", "--config", s.config], {
      cwd: s.dir,
      wrap,
      env: { NODE_COMPILE_CACHE: undefined },
    });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /warning: secret\.db: .*\[UNREADABLE\]/);
    const sum = JSON.parse(r.stdout);
    assert.equal(sum.files, 1);
    const out = path.join(s.dir, "out");
    const rr = await s.cli(["restore", "data", "--to", out]);
    assert.equal(rr.code, 0, rr.stderr);
    assert.deepEqual((await fs.readdir(out)).sort(), [".bsched-restored", "ok1"]);
    const v = await s.cli(["verify", "data"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
}
