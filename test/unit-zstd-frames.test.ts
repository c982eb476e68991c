import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import test from "node:test";
import zlib from "node:zlib";
import { ZstdFrameSplitter } from "../src/platform/zstd-frames.ts";

/** Frames of the compressed type's payload: independent zstd frames, with a skippable one between. */
function stream(): { bytes: Buffer; frames: Buffer[] } {
  const frames = [
    zlib.zstdCompressSync(Buffer.alloc(300_000, "a")),
    zlib.zstdCompressSync(randomBytes(700_000)), // incompressible: raw blocks of 128 KiB
    zlib.zstdCompressSync(Buffer.from("small")),
    zlib.zstdCompressSync(Buffer.alloc(0)),
  ];
  const skippable = Buffer.alloc(8 + 10);
  skippable.writeUInt32LE(0x184d2a50, 0);
  skippable.writeUInt32LE(10, 4);
  return { bytes: Buffer.concat([frames[0], skippable, ...frames.slice(1)] as Buffer[]), frames };
}

function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const s = new ZstdFrameSplitter();
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(...s.push(bytes.subarray(at, c)));
    at = c;
  }
  s.end();
  return out;
}

test("zstd frames: the same frames whatever the chunk boundaries (one byte, odd sizes, whole)", () => {
  const { bytes, frames } = stream();
  const expected = frames.map((f) => f.toString("hex"));
  const sizes = [7, 4096, 65_536, 131_075, 1 << 20, bytes.length];
  for (const size of sizes) {
    const cuts: number[] = [];
    for (let c = size; c < bytes.length; c += size) cuts.push(c);
    assert.deepEqual(
      split(bytes, cuts).map((f) => f.toString("hex")),
      expected,
      `chunks of ${size}`,
    );
  }
  for (let round = 0; round < 30; round++) {
    const cuts = Array.from({ length: 20 }, () => Math.floor(Math.random() * bytes.length)).sort(
      (a, b) => a - b,
    );
    assert.deepEqual(
      split(bytes, cuts).map((f) => f.toString("hex")),
      expected,
      `cuts ${cuts}`,
    );
  }
  // One byte at a time, through every header and block boundary of the small frames.
  const small = Buffer.concat([frames[0], frames[2], frames[3]] as Buffer[]);
  const bytewise = split(
    small,
    Array.from({ length: small.length - 1 }, (_, i) => i + 1),
  );
  assert.equal(bytewise.length, 3);
  for (const f of split(bytes, [5, 300, 200_000]))
    assert.ok(zlib.zstdDecompressSync(f).length >= 0, "each frame decodes on its own");
});

test("zstd frames: a stream cut short or damaged is an error, never frames silently dropped", () => {
  const { bytes } = stream();
  assert.throws(() => split(bytes.subarray(0, bytes.length - 3), [1000]), /truncated/);
  const bad = Buffer.from(bytes);
  bad.writeUInt32LE(0x12345678, 0);
  assert.throws(() => split(bad, [100]), /not a zstd frame at byte 0/);
});
