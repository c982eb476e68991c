import type { SetConfig } from "../config/load.ts";
import type { BackupMode } from "../core/types.ts";
import type { FoundBackup } from "../destination/backups.ts";
import { type ChainLink, resolveChain } from "../snapshot/chain.ts";

/**
 * The full cadence of an incremental set (docs/design.md "The full cadence"): when the chain the
 * next backup would extend already holds `fullEvery` backups (the full and fullEvery-1
 * incrementals), the next backup of the set's own mode is a full. So chains stay bounded:
 * `keep` can delete whole old chains, and a restore replays at most fullEvery backups.
 * An explicit `--mode` is not the set's own mode and is obeyed as asked.
 */
export function fullIsDue(fullEvery: number, chainLength: number): boolean {
  return chainLength === 0 || chainLength >= fullEvery;
}

/**
 * Backups in the chain of the newest backup of the set (oldest first, as listBackups gives
 * them): the chain a new incremental would extend. 0 when there is none or it is broken (the
 * next backup is then a full, as src/backup/run.ts decides). Reads headers only, as the run does.
 */
export async function chainLength(backups: FoundBackup[]): Promise<number> {
  const newest = backups.at(-1);
  if (!newest) return 0;
  const byName = new Map(backups.map((b) => [b.name, { ...b, digest: "" }]));
  try {
    const chain = await resolveChain(byName.get(newest.name) as ChainLink, async (n) => byName.get(n), {
      checkDigests: false,
    });
    return chain.length;
  } catch {
    return 0;
  }
}

/**
 * The modes of the set's next `count` backups of its own mode, from the current chain length,
 * assuming each one succeeds and nothing else runs in between.
 */
export function plannedModes(
  set: Pick<SetConfig, "mode" | "fullEvery">,
  current: number,
  count: number,
): BackupMode[] {
  const out: BackupMode[] = [];
  let length = current;
  for (let i = 0; i < count; i++) {
    if (set.mode === "full" || fullIsDue(set.fullEvery, length)) {
      out.push("full");
      length = 1;
    } else {
      out.push("incremental");
      length++;
    }
  }
  return out;
}

/** How many backups from now the next full is (1: the very next one). */
export function backupsUntilFull(set: Pick<SetConfig, "mode" | "fullEvery">, current: number): number {
  if (set.mode === "full" || fullIsDue(set.fullEvery, current)) return 1;
  return set.fullEvery - current + 1;
}
