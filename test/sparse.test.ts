import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { HOLE_BLOCK, holeSink } from "../src/platform/copy.ts";
import { tempDir } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";

/** Bytes a file really takes on disk (st_blocks counts 512-byte units). */
async function allocated(file: string): Promise<number> {
  return (await fs.stat(file)).blocks * 512;
}

test("holeSink: any chunking gives the same bytes, zero blocks become holes", async (t) => {
  const dir = await tempDir("bsched-holes-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  // 4 MiB + 123 bytes: data islands (one straddling a block boundary, one at the very end) in zeros.
  const data = Buffer.alloc(4 * 1024 * 1024 + 123);
  randomBytes(5000).copy(data, 10);
  randomBytes(300).copy(data, 2 * HOLE_BLOCK - 100);
  randomBytes(123).copy(data, data.length - 123);
  for (const chunkSize of [1, 4096 + 7, HOLE_BLOCK, 1 << 20, data.length]) {
    const file = path.join(dir, `f-${chunkSize}`);
    const fh = await fs.open(file, "wx");
    const sink = holeSink(fh);
    // Chunks of varying size: the sink must not depend on where chunks begin.
    for (let off = 0, i = 0; off < data.length; i++) {
      const n = chunkSize === 1 ? 1 + ((i * 7919) % 200_000) : chunkSize;
      await sink.write(data.subarray(off, Math.min(off + n, data.length)));
      off += n;
    }
    await sink.finish();
    await fh.close();
    assert.ok((await fs.readFile(file)).equals(data), `content, chunks of ${chunkSize}`);
    assert.ok((await allocated(file)) <= 6 * HOLE_BLOCK, `holes kept, chunks of ${chunkSize}`);
  }
  // A file that ends in a hole gets its size from the truncate.
  const tail = path.join(dir, "tail");
  const fh = await fs.open(tail, "wx");
  const sink = holeSink(fh);
  await sink.write(Buffer.concat([Buffer.from("head"), Buffer.alloc(3 * HOLE_BLOCK)]));
  await sink.finish();
  await fh.close();
  assert.equal((await fs.stat(tail)).size, 4 + 3 * HOLE_BLOCK);
});

// 2 GiB as in issue 9; a smaller file (still sparse, still above the 1 MiB threshold) for the
// quick runs of the whole suite on a shared machine.
const SIZE = process.env.BSCHED_SKIP_LARGE ? 64 * 1024 * 1024 : 2 * 1024 * 1024 * 1024;

test(`a sparse file (${SIZE / 2 ** 20} MiB, a few blocks written) keeps its holes in both types`, async (t) => {
  const s = await makeServer({ mode: "full", prefix: "bsched-sparse-" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const img = path.join(s.data, "disk.img");
  const blocks: [number, Buffer][] = [
    [0, randomBytes(4096)],
    [Math.floor(SIZE / 2) + 12345, randomBytes(4096)],
    [SIZE - 4096, randomBytes(4096)],
  ];
  const fh = await fs.open(img, "wx");
  await fh.truncate(SIZE);
  for (const [at, b] of blocks) await fh.write(b, 0, b.length, at);
  await fh.close();
  await fs.writeFile(path.join(s.data, "small.txt"), "not sparse");
  assert.ok((await allocated(img)) < 1024 * 1024, "the source is sparse");

  const checkRestored = async (out: string, label: string) => {
    const st = await fs.stat(path.join(out, "disk.img"));
    assert.equal(st.size, SIZE, label);
    assert.ok(st.blocks * 512 <= 1024 * 1024, `${label}: ${st.blocks * 512} bytes allocated: holes kept`);
    const r = await fs.open(path.join(out, "disk.img"), "r");
    try {
      for (const [at, b] of blocks) {
        const got = Buffer.alloc(b.length);
        await r.read(got, 0, got.length, at);
        assert.ok(got.equals(b), `${label}: data at ${at}`);
      }
    } finally {
      await r.close();
    }
    // The rest is checked by the restore itself: every file against its whole-file sha256.
    assert.equal(await fs.readFile(path.join(out, "small.txt"), "utf8"), "not sparse");
  };

  const sep = await s.backup(["--type", "separate"]);
  const stored = path.join(sep.path, "files/disk.img");
  assert.equal((await fs.stat(stored)).size, SIZE);
  assert.ok((await allocated(stored)) <= 1024 * 1024, "the separate backup stores it sparse");
  const out1 = path.join(s.dir, "out-separate");
  const r1 = await s.cli(["restore", "data", "--backup", sep.name, "--to", out1]);
  assert.equal(r1.code, 0, r1.stderr);
  await checkRestored(out1, "separate");

  const comp = await s.backup(["--type", "compressed"]);
  const sh = path.join(comp.path, `${comp.name}.sh`);
  assert.ok((await fs.stat(sh)).size < 16 * 1024 * 1024, "zeros compress");
  const out2 = path.join(s.dir, "out-compressed");
  const r2 = await s.cli(["restore", "data", "--backup", comp.name, "--to", out2]);
  assert.equal(r2.code, 0, r2.stderr);
  await checkRestored(out2, "compressed");
});
