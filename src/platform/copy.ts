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
  src: FileHandle,
  sink: Sink | undefined,
  onBytes?: (n: number) => void,
  limits: CopyLimits = {},
): Promise<CopyResult> {
  const limit = limits.limit ?? Number.POSITIVE_INFINITY;
  const hash = createHash("sha256");
  let bufs = [takeBuffer(), takeBuffer()] as const;
  let pos = 0;
  const want = () => Math.min(CHUNK, limit - pos);
  let pending = want() > 0 ? src.read(bufs[0], 0, want(), 0) : Promise.resolve({ bytesRead: 0 });
  try {
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const cur = bufs[0].subarray(0, bytesRead);
      pos += bytesRead;
      bufs = [bufs[1], bufs[0]];
      pending = want() > 0 ? src.read(bufs[0], 0, want(), pos) : Promise.resolve({ bytesRead: 0 });
      hash.update(cur);
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
    hash.update(zeros);
    if (typeof sink === "function") await sink(zeros);
    else if (sink) await writeAll(sink, zeros);
    padded += zeros.length;
  }
  return { bytes: pos, sha256: hash.digest("hex") };
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
