import type { FileHandle } from "node:fs/promises";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { writeAll } from "../../platform/copy.ts";

export type Compressor = "zstd" | "gzip";

const zstdCompress = promisify(zlib.zstdCompress);
const gzip = promisify(zlib.gzip);

/**
 * Output in 1 MiB pieces: with the default 16 KiB, a 4 MiB frame comes back through ~100
 * callbacks on the main thread, which then spends more time in them than hashing.
 */
const CHUNK_SIZE = 1 << 20;

const ZSTD_OPTIONS: zlib.ZstdOptions = {
  chunkSize: CHUNK_SIZE,
  params: { [zlib.constants.ZSTD_c_compressionLevel]: 3, [zlib.constants.ZSTD_c_checksumFlag]: 1 },
};

/** One independent frame (zstd) or member (gzip): concatenations of either are valid streams. */
export function compressFrame(c: Compressor, data: Buffer): Promise<Buffer> {
  return c === "zstd" ? zstdCompress(data, ZSTD_OPTIONS) : gzip(data, { level: 6, chunkSize: CHUNK_SIZE });
}

export function compressFrameSync(c: Compressor, data: Buffer): Buffer {
  return c === "zstd"
    ? zlib.zstdCompressSync(data, ZSTD_OPTIONS)
    : zlib.gzipSync(data, { level: 6, chunkSize: CHUNK_SIZE });
}

/**
 * Bytes that decompress to nothing, to fill `size` bytes exactly: a zstd skippable frame, or
 * empty gzip members whose FEXTRA field carries the filler. Returns undefined if `size` is
 * too small for one (8 bytes for zstd, 22 for gzip).
 */
export function paddingFrames(c: Compressor, size: number): Buffer | undefined {
  if (c === "zstd") {
    if (size < 8) return undefined;
    const b = Buffer.alloc(size);
    b.writeUInt32LE(0x184d2a50, 0);
    b.writeUInt32LE(size - 8, 4);
    return b;
  }
  const parts: Buffer[] = [];
  let left = size;
  if (left < 22) return undefined;
  while (left > 0) {
    // Keep what is left after this member either 0 or at least one minimal member.
    let xlen = Math.min(65535, left - 22);
    if (left - 22 - xlen > 0 && left - 22 - xlen < 22) xlen -= 22;
    const m = Buffer.alloc(22 + xlen);
    m.set([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255], 0);
    m.writeUInt16LE(xlen, 10);
    m.set([3, 0], 12 + xlen); // an empty final deflate block; CRC32 and ISIZE stay 0
    parts.push(m);
    left -= m.length;
  }
  return Buffer.concat(parts);
}

/**
 * Turns a byte stream into independent compressed frames written in order at increasing file
 * positions. Frames are compressed on the libuv thread pool, several at once, so compression
 * uses every core while the main thread reads and hashes the next files.
 */
export class FrameWriter {
  private staging: Buffer;
  private used = 0;
  private readonly queue: { frame: Promise<Buffer>; input: Buffer }[] = [];
  private readonly spare: Buffer[] = [];
  private readonly fh: FileHandle;
  private readonly compressor: Compressor;
  private readonly frameSize: number;
  private readonly inFlight: number;
  position: number;

  constructor(fh: FileHandle, start: number, compressor: Compressor, frameSize = 4 << 20, inFlight = 3) {
    this.fh = fh;
    this.compressor = compressor;
    this.frameSize = frameSize;
    this.inFlight = inFlight;
    this.position = start;
    this.staging = Buffer.allocUnsafe(frameSize);
  }

  /** Add bytes (copied: the caller may reuse `data` once this resolves). */
  async write(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, this.frameSize - this.used);
      data.copy(this.staging, this.used, off, off + n);
      this.used += n;
      off += n;
      if (this.used === this.frameSize) await this.cut();
    }
  }

  /** Close the current frame (if any bytes are staged). */
  async cut(): Promise<void> {
    if (this.used === 0) return;
    const input = this.staging;
    const frame = compressFrame(this.compressor, input.subarray(0, this.used));
    frame.catch(() => undefined); // a failure surfaces when awaited in order, not as unhandled
    this.queue.push({ frame, input });
    // Staging buffers are reused once their frame is compressed: allocating 4 MiB per frame
    // kept the garbage collector busier than the hashing.
    this.staging = this.spare.pop() ?? Buffer.allocUnsafe(this.frameSize);
    this.used = 0;
    while (this.queue.length >= this.inFlight) await this.drainOne();
  }

  private async drainOne(): Promise<void> {
    const job = this.queue.shift() as { frame: Promise<Buffer>; input: Buffer };
    const frame = await job.frame;
    this.spare.push(job.input);
    await writeAll(this.fh, frame, this.position);
    this.position += frame.length;
  }

  /** Flush everything; returns the position after the last frame. */
  async close(): Promise<number> {
    await this.cut();
    while (this.queue.length > 0) await this.drainOne();
    return this.position;
  }

  /** Stop without writing what is queued (the run failed). */
  abandon(): void {
    this.queue.splice(0);
  }
}
