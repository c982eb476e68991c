import type { BigIntStats } from "node:fs";
import { constants as C } from "node:fs";
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
