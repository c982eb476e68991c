import type { Catalog } from "../catalog/catalog.ts";
import type { SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import { assessBackups, diskBytesOf } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";
import { destinationOf } from "../destination/for-set.ts";
import type { Clock } from "../platform/clock.ts";
import { fromOsError } from "../platform/os-errors.ts";
import { planRetention, type RetentionItem, type RetentionPlan } from "./policy.ts";

export interface PruneResult {
  set: string;
  dryRun: boolean;
  plan: RetentionPlan;
  /** Backups actually deleted (empty on a dry run). */
  removed: string[];
  /** Bytes the removed backups stored themselves. */
  freedBytes: number;
  /** `--broken`: only unrestorable backups were considered, each removed with its reason. */
  brokenOnly: boolean;
}

/** The backups as the keep policy sees them: when each started, its parent, whether it is broken. */
export function retentionItems(backups: Awaited<ReturnType<typeof assessBackups>>): RetentionItem[] {
  return backups.map((b) => ({
    name: b.name,
    startedAt: b.header?.startedAt ?? "",
    parent: b.header?.parent?.name ?? null,
    broken: b.state === "broken" ? b.reason : undefined,
  }));
}

/**
 * Apply the set's `keep` policy under the set's lock (so no backup runs meanwhile). Deletes
 * newest first: at every moment each remaining backup's chain is whole. Backups that cannot be
 * restored are kept and listed in `plan.broken`; with `brokenOnly` (`prune --broken`) those, and
 * only those, are deleted instead (no keep policy needed).
 */
export async function pruneSet(
  set: SetConfig,
  opts: {
    timezone: string;
    clock: Clock;
    dryRun?: boolean;
    catalog?: Catalog | undefined;
    brokenOnly?: boolean;
    /** Overrides the set's own destination (default destinationOf(set)). */
    destination?: Destination | undefined;
  },
): Promise<PruneResult> {
  const dest = opts.destination ?? destinationOf(set);
  const brokenOnly = opts.brokenOnly === true;
  if (!set.keep && !brokenOnly) {
    throw new BschedError("USAGE", `set "${set.id}" has no keep policy: every backup is kept`, {
      hint: `add sets.${set.id}.keep (e.g. keep: { daily: 7, weekly: 4, monthly: 12 }) to the config`,
    });
  }
  const policy = set.keep;
  const plan = async (): Promise<{ plan: RetentionPlan; stored: Map<string, number> }> => {
    const backups = await assessBackups(dest, set.letter, set.id);
    const items = retentionItems(backups);
    // What deleting it frees: its size on disk, not the logical size it stores (issue 9); a
    // folder without a readable manifest counts 0 (its type, hence its layout, is unknown).
    const stored = new Map(
      await Promise.all(
        backups.map(async (b) => [b.name, b.header ? await diskBytesOf(dest, b.name, b.header) : 0] as const),
      ),
    );
    if (brokenOnly) {
      // Newest first as the policy does; every one of them is unrestorable already.
      const broken = planRetention(items, { last: Number.MAX_SAFE_INTEGER }, opts.timezone).broken;
      // A whole backup of another set (a set renamed while keeping its letter) restores with
      // --from: it is shown as broken for this set but never deleted, not even by --broken.
      const foreign = new Set(backups.filter((b) => b.foreignSet !== undefined).map((b) => b.name));
      const remove = broken.map((b) => b.name).filter((n) => !foreign.has(n));
      return { plan: { keep: [], remove, reasons: {}, broken }, stored };
    }
    return { plan: planRetention(items, policy ?? {}, opts.timezone), stored };
  };
  if (opts.dryRun) {
    const p = await plan();
    return { set: set.id, dryRun: true, plan: p.plan, removed: [], freedBytes: 0, brokenOnly };
  }
  // Never create a specific folder's parents (an unmounted disk): see ensureBackupFolder.
  await dest.ready();
  const lock = await dest.lock(set.id, `prune of set ${set.id}`, opts.clock);
  try {
    // What crashed deletions (and runs) of this letter left: the lock holder's to remove.
    await dest.removeLeftovers(set.letter);
    const p = await plan();
    const removed: string[] = [];
    let freedBytes = 0;
    for (const name of p.plan.remove) {
      // Hidden first (one atomic step), then removed: a crash never leaves something listed.
      await dest.remove(name);
      opts.catalog?.removeBackup(set.id, name, dest.name);
      removed.push(name);
      freedBytes += p.stored.get(name) ?? 0;
    }
    return { set: set.id, dryRun: false, plan: p.plan, removed, freedBytes, brokenOnly };
  } catch (e) {
    // Each backup removed so far is gone whole, newest first: the next prune goes on from there.
    throw fromOsError(e, { path: dest.where, doing: `prune of set ${set.id}` });
  } finally {
    await lock.release();
  }
}
