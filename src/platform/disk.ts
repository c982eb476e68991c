import fs from "node:fs/promises";

/** How full the filesystem holding `dir` is, as `df` counts it (space reserved for root is not free). */
export async function diskUsage(
  dir: string,
): Promise<{ totalBytes: number; freeBytes: number; usedPercent: number }> {
  const s = await fs.statfs(dir);
  const used = (s.blocks - s.bfree) * s.bsize;
  const free = s.bavail * s.bsize;
  const total = used + free;
  return {
    totalBytes: s.blocks * s.bsize,
    freeBytes: free,
    usedPercent: total > 0 ? (used / total) * 100 : 0,
  };
}
