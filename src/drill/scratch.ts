import fs from "node:fs/promises";
import path from "node:path";
import { BschedError, errnoCode } from "../core/errors.ts";
import { hostName, isProcessAlive } from "../platform/host.ts";
import { drillScratchName, parseDrillScratchName } from "../platform/names.ts";

/** Kept free beside a drill's restore: the file system must not be filled to its last block. */
export const SCRATCH_MARGIN_BYTES = 64 << 20;

/**
 * Remove what drills whose process is gone left in the scratch folder (a crash, a `kill -9`): every
 * `bsched-drill-<set>-PID-HEX` folder of a dead pid, of any set. A live drill's folder is left
 * alone (another set's drill may share the scratch folder). Returns the paths removed.
 */
export async function removeScratchLeftovers(scratch: string): Promise<string[]> {
  const names = await fs.readdir(scratch).catch((e: unknown) => {
    if (errnoCode(e) === "ENOENT") return [] as string[];
    throw e;
  });
  const removed: string[] = [];
  for (const name of names) {
    const own = parseDrillScratchName(name);
    // This process's own (the daemon drilling another set now) and live processes' are in use.
    if (own === undefined || own.pid === process.pid || isProcessAlive(own.pid)) continue;
    const p = path.join(scratch, name);
    await fs.rm(p, { recursive: true, force: true });
    removed.push(p);
  }
  return removed;
}

/** Free bytes of the file system that holds `dir`, or of its nearest existing parent. */
export async function freeBytesAt(dir: string): Promise<number> {
  let at = dir;
  for (;;) {
    try {
      const st = await fs.statfs(at);
      return st.bavail * st.bsize;
    } catch (e) {
      const parent = path.dirname(at);
      if (errnoCode(e) !== "ENOENT" || parent === at) throw e;
      at = parent;
    }
  }
}

/**
 * Refuse a drill before anything is written when its restore cannot fit: `need` (the backup's
 * state, from its manifest's totals) above `maxSize` (drill.maxSize), or above the scratch folder's
 * free space less a margin. The message names the backup, the sizes and the key to change.
 */
export async function checkScratchSpace(opts: {
  scratch: string;
  need: number;
  maxSize: number;
  backup: string;
  setId: string;
}): Promise<void> {
  const { scratch, need, maxSize, backup, setId } = opts;
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  if (need > maxSize) {
    throw new BschedError(
      "DISK_FULL",
      `drill of set ${setId}: ${backup} restores ${mb(need)}, more than drill.maxSize (${mb(maxSize)}); nothing was restored`,
      {
        hint: `raise sets.${setId}.drill.maxSize (e.g. "${Math.ceil((need * 1.2) / 1e9)}GB") if ${scratch} has room`,
      },
    );
  }
  const free = await freeBytesAt(scratch);
  if (need + SCRATCH_MARGIN_BYTES > free) {
    throw new BschedError(
      "DISK_FULL",
      `drill of set ${setId}: ${backup} restores ${mb(need)}, but the scratch folder ${scratch} has ${mb(free)} free (${mb(SCRATCH_MARGIN_BYTES)} kept spare); nothing was restored`,
      {
        hint: `free space there, or set sets.${setId}.drill.scratch to a folder on a larger file system`,
      },
    );
  }
}

/** A drill's own folder in the scratch folder, made owner-only (it receives a copy of the set's data). */
export async function makeDrillFolder(scratch: string, setId: string): Promise<string> {
  await fs.mkdir(scratch, { recursive: true, mode: 0o700 });
  const dir = path.join(scratch, drillScratchName(setId));
  await fs.mkdir(dir, { mode: 0o700 });
  return dir;
}

/** Remove a drill's folder; a failure is returned as a message (the drill's outcome stands). */
export async function removeDrillFolder(dir: string): Promise<string | undefined> {
  try {
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
    return undefined;
  } catch (e) {
    return `could not remove the drill's scratch folder ${dir} on ${hostName()}: ${(e as Error).message}`;
  }
}
