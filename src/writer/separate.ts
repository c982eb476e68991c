import { constants as C } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Entry } from "../core/types.ts";
import { copyAndHash } from "../platform/copy.ts";
import { nsToSeconds } from "../platform/times.ts";
import { FILES_DIR } from "../snapshot/manifest.ts";
import { changedSince, openSource, refreshEntry } from "../source/consistent.ts";

export interface StoredFile {
  entry: Entry;
  changedWhileRead: boolean;
}

/**
 * Copy one source file to `dest` (a new file), hashing on the way; the copy keeps the mode
 * and mtime so that the backup folder can be browsed and copied back by hand.
 */
export async function storeFile(
  srcAbs: string,
  dest: string,
  entry: Entry,
  onBytes?: (n: number) => void,
): Promise<StoredFile> {
  const { fh: src, st } = await openSource(srcAbs);
  try {
    const out = await fs.open(dest, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      const { sha256, bytes } = await copyAndHash(src, out, onBytes);
      const changedWhileRead = (await changedSince(src, st)) || BigInt(bytes) !== st.size;
      const fresh = refreshEntry(entry, st);
      await out.chmod(fresh.mode);
      const mtime = nsToSeconds(fresh.mtimeNs);
      await out.utimes(mtime, mtime);
      return { entry: { ...fresh, size: bytes, sha256 }, changedWhileRead };
    } finally {
      await out.close();
    }
  } finally {
    await src.close();
  }
}

export async function makeDir(dest: string): Promise<void> {
  await fs.mkdir(dest, { recursive: true, mode: 0o700 });
}

export async function makeSymlink(entry: Entry, dest: string): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
  await fs.symlink(entry.target ?? "", dest);
  const t = nsToSeconds(entry.mtimeNs);
  await fs.lutimes(dest, t, t).catch(() => undefined);
}

/** Give the copied folders their source mode and mtime, deepest first (writing into a folder moves its mtime). */
export async function finishDirs(root: string, dirs: Entry[]): Promise<void> {
  for (const d of [...dirs].reverse()) {
    const p = path.join(root, d.path);
    await fs.chmod(p, d.mode | 0o700);
    const t = nsToSeconds(d.mtimeNs);
    await fs.utimes(p, t, t);
  }
}

/** Where a separate backup keeps the content of the file at relative path `rel`. */
export function storedPath(backupDir: string, rel: string): string {
  return path.join(backupDir, FILES_DIR, rel);
}
