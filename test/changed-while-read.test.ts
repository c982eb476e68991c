import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import type { Entry, Warning } from "../src/core/types.ts";
import { CHANGED_RETRIES } from "../src/format/retry.ts";
import { separateWriter } from "../src/format/separate/writer.ts";
import type { WriteJob } from "../src/format/types.ts";
import { plainReader, type SourceReader } from "../src/source/reader.ts";
import { entryFromStat } from "../src/source/scan.ts";
import { tempDir } from "./helpers/cli.ts";
import { makeLiveServer, waitFor } from "./helpers/live.ts";

/** A reader whose `changed()` says "moved" for the first `moves[path]` reads of a file (fault injection). */
function flakyReader(
  inner: SourceReader,
  moves: Record<string, number>,
): { reader: SourceReader; opens: Map<string, number> } {
  const opens = new Map<string, number>();
  return {
    opens,
    reader: {
      async open(entry) {
        const n = (opens.get(entry.path) ?? 0) + 1;
        opens.set(entry.path, n);
        const src = await inner.open(entry);
        return { ...src, changed: async () => n <= (moves[entry.path] ?? 0) || (await src.changed()) };
      },
    },
  };
}

async function writeWith(reader: SourceReader, src: string, files: string[]) {
  const tmp = await tempDir("bsched-cwr-");
  const entries: Entry[] = [];
  for (const f of files) {
    entries.push(entryFromStat(f, await fs.lstat(path.join(src, f), { bigint: true })) as Entry);
  }
  const warnings: Warning[] = [];
  const job: WriteJob = {
    tmp,
    name: "D_2026_01_01_00_00_00",
    set: "data",
    mode: "full",
    parent: null,
    draftManifest: () => "",
    reader,
    dirs: [],
    files: entries,
    symlinks: [],
    deletions: [],
    warn: (w) => warnings.push(w),
    onBytes: () => undefined,
    onFile: () => undefined,
  };
  const r = await separateWriter.write(job);
  return { ...r, warnings, tmp };
}

test("changed while read: a file that settles after a retry is stored without a warning", async () => {
  const src = await tempDir("bsched-cwr-src-");
  await fs.writeFile(path.join(src, "log.txt"), "line\n".repeat(1000));
  const { reader, opens } = flakyReader(plainReader(src), { "log.txt": 2 });
  const r = await writeWith(reader, src, ["log.txt"]);
  assert.equal(opens.get("log.txt"), 3, "read three times: two moved, the third did not");
  assert.deepEqual(r.warnings, []);
  const stored = await fs.readFile(path.join(r.tmp, "files", "log.txt"), "utf8");
  assert.equal(stored, "line\n".repeat(1000));
  await fs.rm(src, { recursive: true, force: true });
  await fs.rm(r.tmp, { recursive: true, force: true });
});

test("changed while read: a file that keeps moving is retried a bounded number of times, kept, and reported", async () => {
  const src = await tempDir("bsched-cwr-src-");
  await fs.writeFile(path.join(src, "busy.log"), "x".repeat(5000));
  await fs.writeFile(path.join(src, "calm.txt"), "calm");
  const { reader, opens } = flakyReader(plainReader(src), { "busy.log": Number.POSITIVE_INFINITY });
  const r = await writeWith(reader, src, ["busy.log", "calm.txt"]);
  assert.equal(opens.get("busy.log"), CHANGED_RETRIES + 1);
  assert.equal(opens.get("calm.txt"), 1);
  assert.deepEqual(
    r.warnings.map((w) => [w.path, w.code]),
    [["busy.log", "CHANGED_WHILE_READ"]],
  );
  assert.match(
    r.warnings[0]?.message ?? "",
    /changed during backup: it moved while read 4 times; the last copy is kept/,
  );
  const entry = r.stored.get("busy.log") as Entry;
  assert.equal(entry.sha256, createHash("sha256").update("x".repeat(5000)).digest("hex"));
  assert.equal(await fs.readFile(path.join(r.tmp, "files", "busy.log"), "utf8"), "x".repeat(5000));
  await fs.rm(src, { recursive: true, force: true });
  await fs.rm(r.tmp, { recursive: true, force: true });
});

test("changed while read: a file appended by another process during the backup is reported and the run exits 3", async () => {
  const s = await makeLiveServer();
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
  try {
    await waitFor("the appender", () => started);
    const r = await s.cli(["backup", "data", "--json"]);
    assert.equal(r.code, 3, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual(
      summary.warnings.map((w: Warning) => [w.path, w.code]),
      [["growing.log", "CHANGED_WHILE_READ"]],
    );
    assert.match(
      r.stderr,
      /growing\.log: changed during backup: it moved while read 4 times.*\[CHANGED_WHILE_READ\]/,
    );
    const manifest = await fs.readFile(path.join(summary.path, "manifest.json"), "utf8");
    assert.match(manifest, /CHANGED_WHILE_READ/, "the manifest records the warning");
    // The kept copy is a whole prefix of the file as it grew: the original content and some lines.
    const kept = await fs.readFile(path.join(summary.path, "files", "growing.log"));
    assert.ok(kept.length >= 24 << 20);
    assert.match(kept.subarray(24 << 20).toString(), /^(event\n)*$/);
  } finally {
    appender.kill("SIGKILL");
  }
  await fs.rm(s.dir, { recursive: true, force: true });
});
