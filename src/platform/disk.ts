import fsp from "node:fs/promises";
import path from "node:path";

/**
 * Free space for an unprivileged writer on the file system holding `folder` (statfs: blocks free
 * to non-root times the block size). A folder not created yet is measured at its nearest existing
 * parent: the backup folder of a set that never ran still has a disk. One system call, no walk:
 * cheap enough for every metrics scrape.
 */
export async function freeBytes(folder: string): Promise<number> {
  let at = path.resolve(folder);
  for (;;) {
    try {
      const s = await fsp.statfs(at);
      return s.bavail * s.bsize;
    } catch (e) {
      const parent = path.dirname(at);
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || parent === at) throw e;
      at = parent;
    }
  }
}

/** How full the filesystem holding `dir` is, as `df` counts it (space reserved for root is not free). */
export async function diskUsage(
  dir: string,
): Promise<{ totalBytes: number; freeBytes: number; usedPercent: number }> {
  const s = await fsp.statfs(dir);
  const used = (s.blocks - s.bfree) * s.bsize;
  const free = s.bavail * s.bsize;
  const total = used + free;
  return {
    totalBytes: s.blocks * s.bsize,
    freeBytes: free,
    usedPercent: total > 0 ? (used / total) * 100 : 0,
  };
}
