import type fs from "node:fs/promises";
import { Readable } from "node:stream";

/**
 * The bytes of an open file from `start` to `end` inclusive, read at positions. Not
 * `fh.createReadStream`: destroying that one (a reader that stops early, or fails) closes the
 * FileHandle whatever `autoClose` says, and the handle must outlive its streams (ReadHandle).
 * `open` gives the handle (opened once by the caller, or on first use: SMB's local copy).
 */
export function rangeStream(
  open: () => Promise<fs.FileHandle>,
  opts: { start?: number; end?: number; highWaterMark?: number },
): Readable {
  const chunk = opts.highWaterMark ?? 1 << 20;
  let pos = opts.start ?? 0;
  const stop = opts.end === undefined ? Number.POSITIVE_INFINITY : opts.end + 1;
  return new Readable({
    highWaterMark: chunk,
    read() {
      const want = Math.min(chunk, stop - pos);
      if (want <= 0) {
        this.push(null);
        return;
      }
      open()
        .then((fh) => fh.read(Buffer.allocUnsafe(want), 0, want, pos))
        .then(
          ({ bytesRead, buffer }) => {
            pos += bytesRead;
            this.push(bytesRead === 0 ? null : buffer.subarray(0, bytesRead));
          },
          (e: unknown) => this.destroy(e as Error),
        );
    },
  });
}
