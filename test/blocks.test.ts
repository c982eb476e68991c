import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import type { Manifest } from "../src/core/types.ts";
import { locateFromPath } from "../src/restore/locate.ts";
import { holdersOf, isDelta } from "../src/snapshot/blocks.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree, type TreeRecord } from "./helpers/tree.ts";

/** Block maps from 1 MiB up (the default, 8 MiB, would make the test's data large). */
export const BLOCK_ENV = { BSCHED_BLOCK_MIN: String(1 << 20) };
const MB = 1 << 20;

export async function backupWithBlocks(s: TestServer): Promise<{ name: string; mode: string }> {
  const r = await s.cli(["backup", "data", "--json"], BLOCK_ENV);
  if (r.code !== 0) throw new Error(`backup exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export async function manifestOf(s: TestServer, name: string): Promise<Manifest> {
  const raw = JSON.parse(await fs.readFile(path.join(s.backups, name, "manifest.json"), "utf8"));
  return { ...raw.header, entries: raw.entries, deletions: raw.deletions };
}

/** The state a backup restores (its manifest may list only its changes: src/snapshot/state.ts). */
export async function stateOfBackup(s: TestServer, name: string): Promise<Manifest> {
  return (await locateFromPath(path.join(s.backups, name))).manifest;
}

/** Overwrite `len` bytes at `pos` with new random bytes. */
async function patch(file: string, pos: number, len: number): Promise<void> {
  const fh = await fs.open(file, "r+");
  try {
    await fh.write(randomBytes(len), 0, len, pos);
  } finally {
    await fh.close();
  }
}

/** The documented by-hand steps for one separate backup: `sh -c STEPS sh TARGET FOLDER`. */
function byHandSeparate(deletions: string[]): string {
  const q = (x: string) => `'${x.replaceAll("'", "'\\''")}'`;
  const rm = deletions.map((d) => `rm -rf -- ${q(d)} && `).join("");
  return `cd "$1" && ${rm}cp -a "$2/files/." "$1/" && if [ -f "$2/apply-blocks.sh" ]; then sh "$2/apply-blocks.sh" "$1"; fi`;
}

/** /bin/sh with `env -i PATH=/usr/bin:/bin`. */
function plainSh(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn("/bin/sh", args, { env: { PATH: "/usr/bin:/bin" }, stdio: ["ignore", "pipe", "pipe"] });
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
}

function toSeconds(t: Map<string, TreeRecord>): Map<string, TreeRecord> {
  return new Map([...t].map(([k, v]) => [k, { ...v, mtimeUs: Math.floor(v.mtimeUs / 1e6) }]));
}

for (const type of ["separate", "compressed"] as const) {
  test(`${type}: block incrementals store changed blocks; shrink, append and rewrite; every point restores exactly`, async () => {
    const s = await makeServer({ setKeys: [`type: ${type}`] });
    const d = (p: string) => path.join(s.data, p);
    await fs.writeFile(d("patched.bin"), randomBytes(5 * MB + 1234));
    await fs.writeFile(d("shrinks.bin"), randomBytes(4 * MB));
    await fs.writeFile(d("grows.log"), randomBytes(2 * MB + 10));
    await fs.writeFile(d("rewritten.bin"), randomBytes(3 * MB));
    await fs.writeFile(d("small.txt"), "small");
    const points: { name: string; tree: Awaited<ReturnType<typeof snapshotTree>> }[] = [];
    const full = await backupWithBlocks(s);
    assert.equal(full.mode, "full");
    points.push({ name: full.name, tree: await snapshotTree(s.data) });
    const m0 = await manifestOf(s, full.name);
    assert.equal(m0.formatVersion, 3);
    assert.equal(m0.holds, "state");
    const patched0 = m0.entries.find((e) => e.path === "patched.bin");
    assert.equal(patched0?.blocks?.base, full.name, "a full backup records block digests of big files");
    assert.equal(m0.entries.find((e) => e.path === "small.txt")?.blocks, undefined);

    for (let round = 1; round <= 3; round++) {
      await patch(d("patched.bin"), round * 100_000, 10);
      await patch(d("patched.bin"), 3 * MB + round * 7, 3);
      const cur = await fs.stat(d("shrinks.bin"));
      await fs.truncate(d("shrinks.bin"), cur.size - MB / 2 - 3);
      await fs.appendFile(d("grows.log"), randomBytes(MB / 3));
      await fs.writeFile(d("rewritten.bin"), randomBytes(3 * MB));
      const b = await backupWithBlocks(s);
      assert.equal(b.mode, "incremental");
      points.push({ name: b.name, tree: await snapshotTree(s.data) });
      const m = await manifestOf(s, b.name);
      const at = (p: string) => m.entries.find((e) => e.path === p);
      for (const p of ["patched.bin", "shrinks.bin", "grows.log"]) {
        const e = at(p);
        assert.ok(e && isDelta(e), `${p} is stored as blocks in ${b.name}`);
        assert.equal(e?.from, b.name);
      }
      // Two blocks changed in patched.bin (1 MiB each): the rest is held by older backups.
      const holders = holdersOf(at("patched.bin")?.blocks as NonNullable<Manifest["entries"][0]["blocks"]>);
      assert.equal(holders.filter((h) => h === b.name).length, 2);
      assert.ok(!isDelta(at("rewritten.bin") as Manifest["entries"][0]), "a rewritten file is stored whole");
      assert.equal(at("rewritten.bin")?.blocks?.base, b.name);
      assert.ok(m.totals.storedBytes < 3 * MB + 4 * MB, `stored ${m.totals.storedBytes} bytes`);
    }

    // Nothing changed: the files stored as blocks are carried with their maps, and still restore.
    const still = await backupWithBlocks(s);
    points.push({ name: still.name, tree: await snapshotTree(s.data) });
    // Its manifest lists no entry (format 3: only changes), so no map is written again.
    const stillManifest = await manifestOf(s, still.name);
    assert.equal(stillManifest.holds, "changes");
    assert.deepEqual(stillManifest.entries, []);
    const carried = (await stateOfBackup(s, still.name)).entries.find((e) => e.path === "patched.bin");
    assert.ok(carried && isDelta(carried) && carried.from !== still.name, "carried with its block map");

    for (const p of points) {
      const out = path.join(s.dir, `out-${p.name}`);
      const r = await s.cli(["restore", "data", "--backup", p.name, "--to", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(diffTrees(p.tree, await snapshotTree(out)), [], `restore of ${p.name}`);
    }

    // By hand, with nothing of bsched's and only /usr/bin:/bin: the same tree as bsched restore.
    const manual = path.join(s.dir, "manual");
    await fs.mkdir(manual);
    for (const p of points) {
      const folder = path.join(s.backups, p.name);
      const r =
        type === "compressed"
          ? await plainSh([path.join(folder, `${p.name}.sh`), "--target", manual])
          : await plainSh([
              "-c",
              byHandSeparate((await manifestOf(s, p.name)).deletions),
              "sh",
              manual,
              folder,
            ]);
      assert.equal(r.code, 0, r.out);
    }
    const last = points.at(-1) as (typeof points)[0];
    const restored = await snapshotTree(path.join(s.dir, `out-${last.name}`));
    assert.deepEqual(diffTrees(toSeconds(restored), toSeconds(await snapshotTree(manual))), []);
  });
}

test("verify re-hashes stored blocks and names the damaged file and backup; restore refuses it", async () => {
  const s = await makeServer();
  const d = (p: string) => path.join(s.data, p);
  await fs.writeFile(d("db.bin"), randomBytes(3 * MB));
  await backupWithBlocks(s);
  await patch(d("db.bin"), MB + 5, 100);
  const inc = await backupWithBlocks(s);
  const ok = await s.cli(["verify", "data"]);
  assert.equal(ok.code, 0, ok.stderr);
  const block = path.join(s.backups, inc.name, "files", "db.bin.bsched-blocks", "1");
  const bytes = await fs.readFile(block);
  bytes[7] = (bytes[7] as number) ^ 0xff;
  await fs.writeFile(block, bytes);
  const bad = await s.cli(["verify", "data", "--json"]);
  assert.notEqual(bad.code, 0);
  const problems = JSON.parse(bad.stdout).problems as { backup: string; path?: string; problem: string }[];
  assert.ok(
    problems.some(
      (p) => p.backup === inc.name && p.path === "db.bin" && /bsched-blocks\/1 .*differs/.test(p.problem),
    ),
    bad.stdout,
  );
  const out = path.join(s.dir, "out");
  const r = await s.cli(["restore", "data", "--to", out]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /db\.bin/);
  await fs.rm(block);
  const gone = await s.cli(["verify", "data", "--json"]);
  assert.ok(
    (JSON.parse(gone.stdout).problems as { path?: string; problem: string }[]).some(
      (p) => p.path === "db.bin" && /bsched-blocks\/1 .*missing/.test(p.problem),
    ),
    gone.stdout,
  );
});
