import type { BigIntStats } from "node:fs";
import { constants as C, closeSync, fstatSync, openSync, readSync } from "node:fs";
import fs, { type FileHandle } from "node:fs/promises";
import type { Entry } from "../core/types.ts";
import { entryFromStat } from "./scan.ts";

/** Open a source file for reading without following a symlink planted in its place. */
export async function openSource(abs: string): Promise<{ fh: FileHandle; st: BigIntStats }> {
  const fh = await fs.open(abs, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    const st = await fh.stat({ bigint: true });
    return { fh, st };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** True when the open file's size, mtime or ctime moved since `before`: it changed while read. */
export async function changedSince(fh: FileHandle, before: BigIntStats): Promise<boolean> {
  const after = await fh.stat({ bigint: true });
  return after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs;
}

/** The entry as the open file is now (it may differ from the scan if it changed in between). */
export function refreshEntry(entry: Entry, st: BigIntStats): Entry {
  return entryFromStat(entry.path, st) ?? entry;
}

export interface SmallRead {
  /** The whole file: a view of a shared buffer, valid until the next readSmallSync. */
  data: Buffer;
  st: BigIntStats;
  /** The file moved (size, mtime, ctime) while it was read. */
  changed: boolean;
}

export const SMALL_FILE_MAX = 128 * 1024;
const smallBuf = Buffer.allocUnsafe(SMALL_FILE_MAX + 1);

/**
 * Read a small file whole with synchronous calls: for the many small files of a tree, the
 * thread-pool round trips of async I/O cost more than the reads. Returns undefined when the
 * file is larger than SMALL_FILE_MAX or `accept` refuses its content (the caller then takes
 * the general path); throws what open throws.
 */
export function readSmallSync(abs: string, accept: (data: Buffer) => boolean): SmallRead | undefined {
  const fd = openSync(abs, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile() || st.size > BigInt(SMALL_FILE_MAX)) return undefined;
    let n = 0;
    for (;;) {
      const r = readSync(fd, smallBuf, n, smallBuf.length - n, n);
      if (r === 0 || n + r === smallBuf.length) {
        n += r;
        break;
      }
      n += r;
    }
    if (n > SMALL_FILE_MAX) return undefined; // it grew past the limit while read
    const data = smallBuf.subarray(0, n);
    if (!accept(data)) return undefined;
    const after = fstatSync(fd, { bigint: true });
    const changed =
      BigInt(n) !== st.size ||
      after.size !== st.size ||
      after.mtimeNs !== st.mtimeNs ||
      after.ctimeNs !== st.ctimeNs;
    return { data, st, changed };
  } finally {
    closeSync(fd);
  }
}
