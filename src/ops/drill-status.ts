import type { Catalog, DrillRecord } from "../catalog/catalog.ts";
import type { Config, SetConfig } from "../config/load.ts";
import { nextRun } from "../schedule/schedule.ts";

/** A drill as `status` shows it: when, which backup, how long the restore took. */
export interface DrillSeen {
  at: string;
  backup: string | null;
  pick: DrillRecord["pick"];
  restoreMs: number | null;
  ok: boolean;
  /** A failed drill's message, code and fix. */
  error: string | null;
  errorCode: string | null;
  errorHint: string | null;
}

/** Per place a set is drilled from: the last time a backup was proven restorable there, and the last drill. */
export interface DrillPlaceStatus {
  /** `local` (the set's own backup folder) or a destination's config name. */
  destination: string;
  /**
   * "Last proven restorable": the newest drill of the newest backup there that passed every check
   * (its restore time is the recovery time); else the newest drill that passed.
   */
  lastProven: DrillSeen | null;
  /** The newest drill, whatever its outcome (a failure shows here until a later drill passes). */
  lastDrill: DrillSeen | null;
}

export interface DrillStatus {
  /** Whether the daemon runs drills of the set on a schedule (`drill:` with a frequency other than now). */
  scheduled: boolean;
  nextRun: string | null;
  places: DrillPlaceStatus[];
}

function seen(d: DrillRecord | undefined): DrillSeen | null {
  if (d === undefined) return null;
  return {
    at: d.finishedAt,
    backup: d.backup,
    pick: d.pick,
    restoreMs: d.restoreMs,
    ok: d.ok,
    error: d.error,
    errorCode: d.errorCode,
    errorHint: d.errorHint,
  };
}

/**
 * A set's drills for `status` (issue 14): each place of its `drill.from`, then any other place the
 * catalog has drills from (a `--dest` drill); null when the set has no drill and was never drilled.
 */
export function drillStatus(config: Config, catalog: Catalog, set: SetConfig, now: Date): DrillStatus | null {
  const all = catalog.drills({ set: set.id, limit: 500 });
  const places = [...new Set([...(set.drill?.from ?? []), ...all.map((d) => d.destination).reverse()])];
  if (set.drill === undefined && places.length === 0) return null;
  const scheduled = set.drill !== undefined && set.drill.frequency !== "now";
  const next = scheduled && set.drill ? nextRun(set.drill, now, config.timezone) : undefined;
  return {
    scheduled,
    nextRun: next?.toISOString() ?? null,
    places: places.map((destination) => ({
      destination,
      // The newest backup proven: its restore time is what a restore today takes. An older
      // backup proven (or one asked for) stands in only when no newest was ever proven.
      lastProven: seen(
        all.find((d) => d.destination === destination && d.ok && d.pick === "newest") ??
          all.find((d) => d.destination === destination && d.ok) ??
          catalog.drills({ set: set.id, destination, ok: true, limit: 1 })[0],
      ),
      lastDrill: seen(all.find((d) => d.destination === destination)),
    })),
  };
}
