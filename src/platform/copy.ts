import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";

const CHUNK = 1 << 20;

export interface CopyResult {
  bytes: number;
  sha256: string;
}

/**
 * Copy `src` to `dst` (either may be absent to only hash, or only write) while hashing, in
 * constant memory: two 1 MiB buffers, the next read in flight while the current chunk is
 * hashed and written.
 */
export async function copyAndHash(
  src: FileHandle,
  dst: FileHandle | undefined,
  onBytes?: (n: number) => void,
): Promise<CopyResult> {
  const hash = createHash("sha256");
  let bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)] as const;
  let pos = 0;
  let pending = src.read(bufs[0], 0, CHUNK, 0);
  try {
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const cur = bufs[0].subarray(0, bytesRead);
      pos += bytesRead;
      bufs = [bufs[1], bufs[0]];
      pending = src.read(bufs[0], 0, CHUNK, pos);
      hash.update(cur);
      if (dst) await writeAll(dst, cur);
      onBytes?.(bytesRead);
    }
  } finally {
    pending.catch(() => undefined);
  }
  return { bytes: pos, sha256: hash.digest("hex") };
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    off += bytesWritten;
  }
}
