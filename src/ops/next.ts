import { chainLength, plannedModes } from "../backup/cadence.ts";
import type { SetConfig } from "../config/load.ts";
import type { BackupMode } from "../core/types.ts";
import { listBackups } from "../destination/backups.ts";
import { destinationOf } from "../destination/for-set.ts";
import { nextRuns } from "../schedule/schedule.ts";
import { type OpContext, throwIfAborted } from "./context.ts";

export interface PlannedRuns {
  set: SetConfig;
  /** The length of the set's current chain (what the full cadence counts from). */
  chain: number;
  runs: { at: Date; mode: BackupMode }[];
}

/**
 * `bsched next`: the next `count` run times of one set, or of every automatic set, counted from
 * `from` (default the clock's now), each with the mode the full cadence gives it.
 */
export async function next(
  ctx: Pick<OpContext, "config" | "clock" | "signal">,
  opts: { set?: SetConfig | undefined; from?: Date | undefined; count: number },
): Promise<PlannedRuns[]> {
  throwIfAborted(ctx.signal);
  const { config } = ctx;
  const from = opts.from ?? ctx.clock.now();
  const sets = opts.set
    ? [opts.set]
    : [...config.sets.values()].filter((s) => s.automatic && s.frequency !== "now");
  const out: PlannedRuns[] = [];
  for (const set of sets) {
    const at = nextRuns(set, from, config.timezone, opts.count);
    // Full or incremental: the set's cadence from its current chain (src/backup/cadence.ts).
    // Closed after: the web window asks this at every change, a remote folder must not keep a session each time.
    const dest = destinationOf(set);
    let chain: number;
    try {
      chain = await chainLength((await listBackups(dest, set.letter, set.id)).backups);
    } finally {
      await dest.close?.();
    }
    const modes = plannedModes(set, chain, at.length);
    out.push({ set, chain, runs: at.map((d, i) => ({ at: d, mode: modes[i] ?? "full" })) });
  }
  return out;
}
