/**
 * Splits a zstd stream into its frames. Node's zstd decompressor stops at the end of the first
 * frame of a write (nodejs/node#64741), so readers decode frame by frame — which also lets them
 * decode several frames at once on the thread pool. Skippable frames are dropped.
 */
const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

export class ZstdFrameSplitter {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of the stream consumed so far (for error messages). */
  private offset = 0;

  /** Feed bytes; returns the frames completed by them, in order. */
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Buffer[] = [];
    for (;;) {
      const len = this.frameLength(this.pending);
      if (len === undefined) break;
      const magic = this.pending.readUInt32LE(0);
      if (magic === ZSTD_MAGIC) frames.push(this.pending.subarray(0, len));
      this.pending = this.pending.subarray(len);
      this.offset += len;
    }
    return frames;
  }

  /** The stream ended: anything left is a truncated frame. */
  end(): void {
    if (this.pending.length > 0) {
      throw new Error(
        `zstd stream truncated: ${this.pending.length} bytes of an unfinished frame at byte ${this.offset}`,
      );
    }
  }

  /** Length of the complete frame at the start of `b`, or undefined if more bytes are needed. */
  private frameLength(b: Buffer): number | undefined {
    if (b.length < 8) return undefined;
    const magic = b.readUInt32LE(0);
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      const total = 8 + b.readUInt32LE(4);
      return b.length >= total ? total : undefined;
    }
    if (magic !== ZSTD_MAGIC) {
      throw new Error(`not a zstd frame at byte ${this.offset} (damaged payload)`);
    }
    const fhd = b[4] as number;
    const fcsFlag = fhd >> 6;
    const singleSegment = (fhd >> 5) & 1;
    const checksum = (fhd >> 2) & 1;
    const dictFlag = fhd & 3;
    const dictBytes = [0, 1, 2, 4][dictFlag] ?? 0;
    const fcsBytes = fcsFlag === 0 ? singleSegment : ([0, 2, 4, 8][fcsFlag] ?? 0);
    let pos = 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
    for (;;) {
      if (b.length < pos + 3) return undefined;
      const h = b.readUIntLE(pos, 3);
      const last = h & 1;
      const type = (h >> 1) & 3;
      if (type === 3)
        throw new Error(`reserved zstd block type at byte ${this.offset + pos} (damaged payload)`);
      pos += 3 + (type === 1 ? 1 : h >> 3);
      if (last) break;
    }
    pos += checksum ? 4 : 0;
    return b.length >= pos ? pos : undefined;
  }
}
