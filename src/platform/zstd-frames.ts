/**
 * Splits a zstd stream into its frames. Node's zstd decompressor stops at the end of the first
 * frame of a write (nodejs/node#64741), so readers decode frame by frame — which also lets them
 * decode several frames at once on the thread pool. Skippable frames are dropped.
 *
 * The bytes fed are kept as a list of chunks and each frame is copied out once, when complete
 * (or not at all when it lies inside one chunk); the walk over a frame's blocks resumes where it
 * stopped. Joining the pending bytes on every chunk and walking the frame again from its start
 * made a 4 MiB frame fed in 1 MiB chunks cost several copies: a quarter of a compressed verify's
 * CPU.
 */
const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

export class ZstdFrameSplitter {
  private chunks: Buffer[] = [];
  /** Bytes held in `chunks`. */
  private held = 0;
  /** Bytes of the stream consumed so far (for error messages). */
  private offset = 0;
  /**
   * The current frame's walk: where its next block header is, its checksum's length, and its
   * length once the last block was seen.
   */
  private walk: { pos: number; tail: number; end?: number } | undefined;

  /** Feed bytes; returns the frames completed by them, in order. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.held += chunk.length;
      // Tiny chunks (a slow pipe) would make the list long and every lookup walk it: join them.
      if (this.chunks.length > 256) this.chunks = [Buffer.concat(this.chunks)];
    }
    const frames: Buffer[] = [];
    for (;;) {
      const len = this.frameLength();
      if (len === undefined) break;
      const frame = this.take(len);
      if (frame.readUInt32LE(0) === ZSTD_MAGIC) frames.push(frame);
      this.offset += len;
      this.walk = undefined;
    }
    return frames;
  }

  /** The stream ended: anything left is a truncated frame. */
  end(): void {
    if (this.held > 0) {
      throw new Error(
        `zstd stream truncated: ${this.held} bytes of an unfinished frame at byte ${this.offset}`,
      );
    }
  }

  /** Byte `i` of the held bytes (i < held). */
  private byte(i: number): number {
    for (const c of this.chunks) {
      if (i < c.length) return c[i] as number;
      i -= c.length;
    }
    throw new RangeError("zstd splitter: read past the held bytes");
  }

  /** Little-endian unsigned integer of `n` bytes at `i` (i + n <= held). */
  private uint(i: number, n: number): number {
    let v = 0;
    for (let k = n - 1; k >= 0; k--) v = v * 256 + this.byte(i + k);
    return v;
  }

  /** The first `len` held bytes as one Buffer (a view when they lie in the first chunk). */
  private take(len: number): Buffer {
    const first = this.chunks[0] as Buffer;
    let out: Buffer;
    if (first.length >= len) {
      out = first.subarray(0, len);
      if (first.length === len) this.chunks.shift();
      else this.chunks[0] = first.subarray(len);
    } else {
      out = Buffer.allocUnsafe(len);
      let at = 0;
      while (at < len) {
        const c = this.chunks[0] as Buffer;
        const n = Math.min(c.length, len - at);
        c.copy(out, at, 0, n);
        at += n;
        if (n === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(n);
      }
    }
    this.held -= len;
    return out;
  }

  /** Length of the complete frame at the start of the held bytes, or undefined if more are needed. */
  private frameLength(): number | undefined {
    const have = this.held;
    if (!this.walk) {
      if (have < 8) return undefined;
      const magic = this.uint(0, 4);
      if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
        const total = 8 + this.uint(4, 4);
        return have >= total ? total : undefined;
      }
      if (magic !== ZSTD_MAGIC) {
        throw new Error(`not a zstd frame at byte ${this.offset} (damaged payload)`);
      }
      const fhd = this.byte(4);
      const fcsFlag = fhd >> 6;
      const singleSegment = (fhd >> 5) & 1;
      const checksum = (fhd >> 2) & 1;
      const dictFlag = fhd & 3;
      const dictBytes = [0, 1, 2, 4][dictFlag] ?? 0;
      const fcsBytes = fcsFlag === 0 ? singleSegment : ([0, 2, 4, 8][fcsFlag] ?? 0);
      this.walk = { pos: 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes, tail: checksum ? 4 : 0 };
    }
    const w = this.walk;
    while (w.end === undefined) {
      if (have < w.pos + 3) return undefined;
      const h = this.uint(w.pos, 3);
      const type = (h >> 1) & 3;
      if (type === 3)
        throw new Error(`reserved zstd block type at byte ${this.offset + w.pos} (damaged payload)`);
      w.pos += 3 + (type === 1 ? 1 : h >> 3);
      // The last block: the frame ends after it and the checksum; then wait for those bytes.
      if (h & 1) w.end = w.pos + w.tail;
    }
    return have >= w.end ? w.end : undefined;
  }
}
