import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, existsSync, readFileSync, writeFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { type TestContext, test } from "node:test";
import { runCli } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";

const TIME = "/usr/bin/time";
const SMALL_FILES = 20_000;
const PER_DIR = 200;
const BIG_MIB = 1024; // 1 GiB
const MAX_RSS_MB = 150;

const skip = !existsSync(TIME)
  ? `${TIME} is absent: cannot measure peak memory (install the "time" package)`
  : process.env.BSCHED_SKIP_LARGE
    ? "BSCHED_SKIP_LARGE is set"
    : false;

interface Measured {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  maxRssMb: number;
}

/** Run the CLI under `/usr/bin/time -v` and read its peak resident set size. */
async function measured(args: string[], cwd: string): Promise<Measured> {
  const started = performance.now();
  const r = await runCli(args, { cwd, wrap: [TIME, "-v"] });
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`no RSS figure from ${TIME}: ${r.stderr}`);
  return { ...r, seconds: (performance.now() - started) / 1000, maxRssMb: Number(m[1]) / 1024 };
}

interface Rec {
  kind: string;
  mode: number;
  mtimeUs: bigint;
  size: bigint;
  sha256?: string;
}

async function hashFile(p: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(p, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Like snapshotTree, but hashes by streaming so a 1 GiB file never sits in memory. */
async function snapshotStreaming(root: string): Promise<Map<string, Rec>> {
  const out = new Map<string, Rec>();
  const walk = async (rel: string): Promise<void> => {
    const ents = await fs.readdir(path.join(root, rel), { withFileTypes: true });
    for (const d of ents) {
      if (!rel && d.name === ".bsched-restored") continue; // the marker a restore leaves
      const r = rel ? `${rel}/${d.name}` : d.name;
      const abs = path.join(root, r);
      const st = await fs.lstat(abs, { bigint: true });
      const rec: Rec = {
        kind: st.isFile() ? "file" : st.isDirectory() ? "dir" : "other",
        mode: Number(st.mode & 0o7777n),
        mtimeUs: st.mtimeNs / 1000n,
        size: st.isFile() ? st.size : 0n,
      };
      if (st.isFile()) {
        rec.sha256 =
          st.size < 1n << 20n
            ? createHash("sha256").update(readFileSync(abs)).digest("hex")
            : await hashFile(abs);
      }
      out.set(r, rec);
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk("");
  return out;
}

function diff(a: Map<string, Rec>, b: Map<string, Rec>): string[] {
  const d: string[] = [];
  const show = (r: Rec | undefined) => JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? String(v) : v));
  for (const [p, r] of a) if (show(r) !== show(b.get(p))) d.push(`${p}: ${show(r)} vs ${show(b.get(p))}`);
  for (const p of b.keys()) if (!a.has(p)) d.push(`extra: ${p}`);
  return d.slice(0, 20);
}

/** 1 MiB of pseudo-random bytes, each chunk stamped with its index so no two chunks are alike. */
async function writeBigFile(file: string, mib: number): Promise<void> {
  const base = randomBytes(1 << 20);
  const fh = await fs.open(file, "w");
  try {
    for (let i = 0; i < mib; i++) {
      base.writeUInt32LE(i, (i * 4096) % ((1 << 20) - 4));
      await fh.write(base, 0, base.length);
    }
  } finally {
    await fh.close();
  }
}

function report(t: TestContext, line: string): void {
  t.diagnostic(line);
  console.log(`# large round trip: ${line}`);
}

test(`round trip of ${SMALL_FILES.toLocaleString("en-US")} files and one ${BIG_MIB / 1024} GiB file under ${MAX_RSS_MB} MB peak memory`, {
  skip,
  timeout: 20 * 60_000,
}, async (t) => {
  const s = await makeServer({ prefix: "bsched-large-" });
  try {
    for (let d = 0; d < SMALL_FILES / PER_DIR; d++) {
      const dir = path.join(s.data, "events", `d${String(d).padStart(3, "0")}`);
      await fs.mkdir(dir, { recursive: true });
      for (let i = 0; i < PER_DIR; i++) {
        writeFileSync(path.join(dir, `e${i}.rec`), `event ${d}/${i} ${"x".repeat((d * 7 + i) % 300)}\n`);
      }
    }
    await writeBigFile(path.join(s.data, "video.db"), BIG_MIB);
    const t0 = performance.now();
    const source = await snapshotStreaming(s.data);
    report(t, `(test) source snapshot: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const files = [...source.values()].filter((r) => r.kind === "file").length;
    assert.ok(files >= SMALL_FILES + 1);

    const b = await measured(["backup", "data", "--json", "--config", s.config], s.dir);
    assert.equal(b.code, 0, b.stderr);
    const sum = JSON.parse(b.stdout);
    assert.equal(sum.files, files);
    report(
      t,
      `backup: ${files} files, ${(sum.bytes / 2 ** 30).toFixed(2)} GiB in ${b.seconds.toFixed(1)} s, peak RSS ${b.maxRssMb.toFixed(1)} MB`,
    );

    const out = path.join(s.dir, "restored");
    const r = await measured(["restore", "data", "--to", out, "--config", s.config], s.dir);
    assert.equal(r.code, 0, r.stderr);
    report(t, `restore: ${files} files in ${r.seconds.toFixed(1)} s, peak RSS ${r.maxRssMb.toFixed(1)} MB`);

    const v = await measured(["verify", "data", "--config", s.config], s.dir);
    assert.equal(v.code, 0, v.stderr);
    report(t, `verify: ${v.seconds.toFixed(1)} s, peak RSS ${v.maxRssMb.toFixed(1)} MB`);

    assert.deepEqual(diff(source, await snapshotStreaming(out)), [], "the restore is exact");
    assert.ok(b.maxRssMb < MAX_RSS_MB, `backup peak RSS ${b.maxRssMb} MB`);
    assert.ok(r.maxRssMb < MAX_RSS_MB, `restore peak RSS ${r.maxRssMb} MB`);
    assert.ok(v.maxRssMb < MAX_RSS_MB, `verify peak RSS ${v.maxRssMb} MB`);
  } finally {
    await fs.rm(s.dir, { recursive: true, force: true });
  }
});
