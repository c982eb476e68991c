import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import type { Manifest } from "../src/core/types.ts";
import { isDelta } from "../src/snapshot/blocks.ts";
import { makeServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

const MB = 1 << 20;
/** Block maps from 1 MiB up, as test/blocks.test.ts (importing it would run its tests here). */
const BLOCK_ENV = { BSCHED_BLOCK_MIN: String(MB) };

async function manifestOf(backups: string, name: string): Promise<Manifest> {
  const raw = JSON.parse(await fs.readFile(path.join(backups, name, "manifest.json"), "utf8"));
  return { ...raw.header, entries: raw.entries, deletions: raw.deletions };
}

/**
 * Source names ending in `.bsched-blocks`, the block layout's suffix (docs/design.md "Block
 * incrementals"): `x` beside `x.bsched-blocks` is stored whole, never as blocks (the two would
 * collide), a folder of that name is warned about (the manual procedure would take it for blocks),
 * and every point restores exactly.
 */
for (const type of ["separate", "compressed"] as const) {
  test(`${type}: a source name ending in .bsched-blocks never collides with the block layout`, async () => {
    const s = await makeServer({ setKeys: [`type: ${type}`] });
    const d = (p: string) => path.join(s.data, p);
    await fs.writeFile(d("x.bin"), randomBytes(3 * MB));
    await fs.writeFile(d("x.bin.bsched-blocks"), "a file of the source, not blocks");
    await fs.writeFile(d("z.bin"), randomBytes(3 * MB));
    await fs.mkdir(d("y.bsched-blocks"));
    await fs.writeFile(d("y.bsched-blocks/0"), "not a block either");
    const backup = async () => {
      const r = await s.cli(["backup", "data", "--json"], BLOCK_ENV);
      // The folder's warning makes every run exit 3: the backup is complete.
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /y\.bsched-blocks.*\[UNSUPPORTED_NAME\]|UNSUPPORTED_NAME.*y\.bsched-blocks/s);
      return JSON.parse(r.stdout) as { name: string; mode: string };
    };
    const points: { name: string; tree: Awaited<ReturnType<typeof snapshotTree>> }[] = [];
    const full = await backup();
    points.push({ name: full.name, tree: await snapshotTree(s.data) });
    for (let round = 1; round <= 2; round++) {
      for (const f of ["x.bin", "z.bin"]) {
        const fh = await fs.open(d(f), "r+");
        await fh.write(randomBytes(10), 0, 10, round * 100_000);
        await fh.close();
      }
      await fs.writeFile(d("y.bsched-blocks/0"), `round ${round}`);
      const b = await backup();
      assert.equal(b.mode, "incremental");
      points.push({ name: b.name, tree: await snapshotTree(s.data) });
      const m = await manifestOf(s.backups, b.name);
      const at = (p: string) => m.entries.find((e) => e.path === p);
      const x = at("x.bin");
      assert.ok(x && !isDelta(x) && x.from === b.name, "x.bin, beside x.bin.bsched-blocks, is stored whole");
      const z = at("z.bin");
      assert.ok(z && isDelta(z) && z.from === b.name, "z.bin, with no such neighbour, is stored as blocks");
      assert.ok(
        m.warnings.some((w) => w.code === "UNSUPPORTED_NAME" && w.path === "y.bsched-blocks"),
        "the folder is named in the manifest's warnings",
      );
    }
    for (const p of points) {
      const out = path.join(s.root, `restored-${p.name}`);
      const r = await s.cli(["restore", "data", "--backup", p.name, "--to", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(diffTrees(p.tree, await snapshotTree(out)), [], `restore of ${p.name}`);
    }
    const v = await s.cli(["verify", "data"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
}
