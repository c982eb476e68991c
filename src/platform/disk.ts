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
