import type { Catalog } from "../catalog/catalog.ts";
import type { Config } from "../config/load.ts";
import type { Clock } from "../platform/clock.ts";
import { nextRuns } from "../schedule/schedule.ts";
import { checkDiskSpace, type DiskCheck } from "./disk-space.ts";

/**
 * What /metrics exports (docs/design.md "Metrics and health"), gathered from the catalog and one
 * statfs per backup folder: never a walk of a backup folder, so a scrape every 15 s costs nothing
 * a backup would notice. src/api/routes/metrics.ts turns it into Prometheus's text format.
 */

/** The last restore drill of a set from one destination (issue 14 item 1 records them). */
export interface DrillFact {
  set: string;
  destination: string;
  /** When the drill ended (ISO instant). */
  at: string;
  ok: boolean;
  /** How long the restore took (the set's real recovery time); null when it did not get that far. */
  restoreSeconds: number | null;
}

/** Where drills come from (default: the catalog's drills table, drillsFromCatalog). */
export type DrillSource = () => DrillFact[] | Promise<DrillFact[]>;

/** The newest drill of each set from each place, from the catalog's record (newest first). */
export function drillsFromCatalog(catalog: Catalog, sets: Iterable<string>): DrillFact[] {
  const out: DrillFact[] = [];
  for (const set of sets) {
    const seen = new Set<string>();
    // A few hundred records cover every place of a set: drills are daily or weekly at most.
    for (const d of catalog.drills({ set, limit: 500 })) {
      if (seen.has(d.destination)) continue;
      seen.add(d.destination);
      out.push({
        set,
        destination: d.destination,
        at: d.finishedAt,
        ok: d.ok,
        restoreSeconds: d.restoreMs === null ? null : d.restoreMs / 1000,
      });
    }
  }
  return out;
}

export interface DestinationFacts {
  destination: string;
  /** Complete backups there, as the catalog knows them. */
  backups: number;
  /** The newest backup there: when it ended and how long it took, what it held. */
  newest: { finishedAt: string; seconds: number; files: number; bytes: number; storedBytes: number } | null;
  /** A copy destination's last copy (null for the set's own folder, or never copied). */
  lastCopy: { at: string; ok: boolean } | null;
}

export interface SetFacts {
  set: string;
  running: boolean;
  nextRun: string | null;
  /** Seconds between two scheduled runs (the next two): alerts say "no success in 2 periods". */
  periodSeconds: number | null;
  /** Runs recorded failed, since the catalog began. */
  failures: number;
  lastRun: { status: string; at: string | null } | null;
  destinations: DestinationFacts[];
}

export interface MetricsFacts {
  sets: SetFacts[];
  disk: DiskCheck[];
  drills: DrillFact[];
}

export interface MetricsDeps {
  config: Config;
  catalog: Catalog;
  clock: Clock;
  /** Sets with a backup running now (the daemon's scheduler knows). */
  running: string[];
  drills?: DrillSource | undefined;
  /** The disk check (default checkDiskSpace with statfs): the daemon passes its own (service.diskSpace). */
  disk?: (() => Promise<DiskCheck[]>) | undefined;
}

export async function metricsFacts(deps: MetricsDeps): Promise<MetricsFacts> {
  const { config, catalog } = deps;
  const now = deps.clock.now();
  const sets: SetFacts[] = [];
  for (const set of config.sets.values()) {
    const scheduled = set.automatic && set.frequency !== "now";
    const [next, after] = scheduled ? nextRuns(set, now, config.timezone, 2) : [];
    const byDest = new Map<string, DestinationFacts>();
    const dest = (name: string): DestinationFacts => {
      let d = byDest.get(name);
      if (!d) {
        d = { destination: name, backups: 0, newest: null, lastCopy: null };
        byDest.set(name, d);
      }
      return d;
    };
    // Oldest first: the last one seen per destination is its newest.
    for (const b of catalog.backups(set.id)) {
      const d = dest(b.destination);
      d.backups++;
      d.newest = {
        finishedAt: b.finishedAt,
        seconds: Math.max(0, (Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000),
        files: b.files,
        bytes: b.bytes,
        storedBytes: b.storedBytes,
      };
    }
    for (const c of catalog.copies(set.id)) dest(c.destination).lastCopy = { at: c.at, ok: c.ok };
    const last = catalog.runs({ set: set.id, limit: 1 })[0];
    sets.push({
      set: set.id,
      running: deps.running.includes(set.id),
      nextRun: next?.toISOString() ?? null,
      periodSeconds: next && after ? (after.getTime() - next.getTime()) / 1000 : null,
      failures: catalog.runs({ set: set.id, status: "failed" }).length,
      lastRun: last ? { status: last.status, at: last.finishedAt ?? last.startedAt } : null,
      destinations: [...byDest.values()],
    });
  }
  const disk = await (deps.disk ? deps.disk() : checkDiskSpace(config, catalog));
  const drills = deps.drills ? await deps.drills() : drillsFromCatalog(catalog, config.sets.keys());
  return { sets, disk, drills };
}
