import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";

const CHUNK = 1 << 20;

export interface CopyResult {
  /** Bytes read from `src` (padding excluded). */
  bytes: number;
  /** sha256 of everything given to the sink, padding included. */
  sha256: string;
}

export interface CopyLimits {
  /** Read at most this many bytes (a tar member's size is fixed by its header). */
  limit?: number;
  /** If `src` ends early, give the sink zero bytes up to this size (what GNU tar does for a shrunk file). */
  padTo?: number;
  /** false: only copy (the caller hashes what it makes of the bytes); `sha256` is then "". */
  hash?: boolean;
}

/**
 * What a copy reads from: a file handle, or a destination's ReadHandle (whose read resolves to the
 * count of bytes read).
 */
export interface ReadAt {
  read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number } | number>;
}

/** Where copied bytes go: a file, or a function that must copy the chunk before it resolves. */
export type Sink = FileHandle | ((chunk: Buffer) => Promise<void>);

// Copy buffers are reused: a fresh 2 MiB per file made peak memory grow with the number of
// small files (V8 hands freed external memory back only when it gets round to a collection).
const spare: Buffer[] = [];
const SPARE_MAX = 16; // two per copy in flight (8 at most)
const takeBuffer = (): Buffer => spare.pop() ?? Buffer.allocUnsafe(CHUNK);

/**
 * Copy `src` to `sink` (absent: only hash) while hashing, in constant memory: two 1 MiB
 * buffers, the next read in flight while the current chunk is hashed and written.
 */
export async function copyAndHash(
  src: ReadAt,
  sink: Sink | undefined,
  onBytes?: (n: number) => void,
  limits: CopyLimits = {},
): Promise<CopyResult> {
  const limit = limits.limit ?? Number.POSITIVE_INFINITY;
  const hash = limits.hash === false ? undefined : createHash("sha256");
  let bufs = [takeBuffer(), takeBuffer()] as const;
  let pos = 0;
  const want = () => Math.min(CHUNK, limit - pos);
  let pending: Promise<{ bytesRead: number } | number> =
    want() > 0 ? src.read(bufs[0], 0, want(), 0) : Promise.resolve(0);
  // The read ahead may fail while the previous chunk is written, before anything awaits it: it
  // is handled here (and thrown where it is awaited), or the process would die of an unhandled
  // rejection (a failing disk, a dropped share) instead of cleaning up and reporting it.
  pending.catch(() => undefined);
  try {
    for (;;) {
      const got = await pending;
      const bytesRead = typeof got === "number" ? got : got.bytesRead;
      if (bytesRead === 0) break;
      const cur = bufs[0].subarray(0, bytesRead);
      pos += bytesRead;
      bufs = [bufs[1], bufs[0]];
      pending = want() > 0 ? src.read(bufs[0], 0, want(), pos) : Promise.resolve(0);
      pending.catch(() => undefined);
      hash?.update(cur);
      if (typeof sink === "function") await sink(cur);
      else if (sink) await writeAll(sink, cur);
      onBytes?.(bytesRead);
    }
    // Only now is no read in flight into either buffer: safe to hand them to the next copy.
    if (spare.length < SPARE_MAX - 1) spare.push(...bufs);
  } finally {
    pending.catch(() => undefined);
  }
  for (let padded = pos; padded < (limits.padTo ?? 0); ) {
    const zeros = Buffer.alloc(Math.min(CHUNK, (limits.padTo ?? 0) - padded));
    hash?.update(zeros);
    if (typeof sink === "function") await sink(zeros);
    else if (sink) await writeAll(sink, zeros);
    padded += zeros.length;
  }
  return { bytes: pos, sha256: hash?.digest("hex") ?? "" };
}

export async function writeAll(fh: FileHandle, data: Buffer, position?: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(
      data,
      off,
      data.length - off,
      position === undefined ? null : position + off,
    );
    off += bytesWritten;
  }
}

/** Files at least this large are written with holes where whole blocks are zero (docs/design.md "Sparse files"). */
export const SPARSE_MIN = 1 << 20;
/**
 * The hole granularity: an aligned 64 KiB block of zeros is not written. Coarser than a file
 * system block (4 KiB) on purpose: a database's scattered zeroed pages stay allocated, so
 * restoring one does not fragment it, while real holes (megabytes to gigabytes) are kept.
 */
export const HOLE_BLOCK = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(HOLE_BLOCK);

export interface HoleSink {
  /** A Sink: copies or writes the chunk before it resolves. */
  write(chunk: Buffer): Promise<void>;
  /** Write what is pending and set the file's size (a trailing hole is made by the truncate). */
  finish(): Promise<void>;
}

/**
 * A sink for a new, empty file that leaves holes: the stream is cut into aligned HOLE_BLOCK
 * blocks, all-zero blocks are skipped (positioned writes of the others), and the final size is
 * set by ftruncate. Node has no lseek(SEEK_DATA/SEEK_HOLE), so holes are found by their zeros:
 * the content is the same byte for byte, and so is its sha256.
 */
export function holeSink(fh: FileHandle): HoleSink {
  const pending = Buffer.allocUnsafe(HOLE_BLOCK);
  let pendingLen = 0;
  /** File offset of pending[0]: always a multiple of HOLE_BLOCK. */
  let at = 0;
  const isZero = (b: Buffer) =>
    b.equals(b.length === HOLE_BLOCK ? ZERO_BLOCK : ZERO_BLOCK.subarray(0, b.length));
  // Whole blocks of `buf` (a multiple of HOLE_BLOCK long) written at `pos`, zero blocks skipped,
  // consecutive data blocks in one write.
  const writeBlocks = async (buf: Buffer, pos: number) => {
    let runStart = -1;
    for (let off = 0; off <= buf.length; off += HOLE_BLOCK) {
      const zero = off === buf.length || isZero(buf.subarray(off, off + HOLE_BLOCK));
      if (!zero && runStart < 0) runStart = off;
      if (zero && runStart >= 0) {
        await writeAll(fh, buf.subarray(runStart, off), pos + runStart);
        runStart = -1;
      }
    }
  };
  return {
    async write(chunk) {
      let off = 0;
      if (pendingLen > 0) {
        const n = Math.min(HOLE_BLOCK - pendingLen, chunk.length);
        chunk.copy(pending, pendingLen, 0, n);
        pendingLen += n;
        off = n;
        if (pendingLen < HOLE_BLOCK) return;
        await writeBlocks(pending, at);
        at += HOLE_BLOCK;
        pendingLen = 0;
      }
      const whole = Math.floor((chunk.length - off) / HOLE_BLOCK) * HOLE_BLOCK;
      if (whole > 0) {
        await writeBlocks(chunk.subarray(off, off + whole), at);
        at += whole;
        off += whole;
      }
      if (off < chunk.length) {
        chunk.copy(pending, 0, off);
        pendingLen = chunk.length - off;
      }
    },
    async finish() {
      const tail = pending.subarray(0, pendingLen);
      if (pendingLen > 0 && !isZero(tail)) await writeAll(fh, tail, at);
      await fh.truncate(at + pendingLen);
    },
  };
}
