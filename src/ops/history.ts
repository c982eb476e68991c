import type { RunFilter, RunRecord } from "../catalog/catalog.ts";
import { asSeen } from "../catalog/interrupted.ts";
import { openCatalog } from "../catalog/reconcile.ts";
import type { Config } from "../config/load.ts";
import type { RunStatus, StoredWarning } from "../core/types.ts";
import { readManifestHeader } from "../destination/backups.ts";
import { closeQuietly } from "../destination/by-name.ts";
import { destinationOf } from "../destination/for-set.ts";
import { type OpContext, throwIfAborted } from "./context.ts";

export interface HistoryFilter {
  set?: string | undefined;
  limit: number;
  /** Only runs with this outcome (as shown: a running run whose process is gone is `interrupted`). */
  status?: RunStatus | undefined;
  /** Only runs started (else finished, else planned) at or after `since` and before `until` (ISO instants). */
  since?: string | undefined;
  until?: string | undefined;
}

/**
 * `bsched history`: past runs, newest first, at most `limit`. Reads only: a run whose process is
 * gone shows as interrupted; the next backup, daemon start or `catalog check` records it so.
 */
export function history(
  ctx: Pick<OpContext, "config" | "clock" | "catalog" | "signal">,
  opts: HistoryFilter,
): RunRecord[] {
  throwIfAborted(ctx.signal);
  const catalog = ctx.catalog ?? openCatalog(ctx.config);
  try {
    const now = ctx.clock.now();
    const filter: RunFilter = {
      ...(opts.set ? { set: opts.set } : {}),
      ...(opts.since ? { since: opts.since } : {}),
      ...(opts.until ? { until: opts.until } : {}),
    };
    // `running` and `interrupted` are as seen now (asSeen): both are read, then told apart.
    const seen = opts.status === "running" || opts.status === "interrupted";
    if (seen) filter.statuses = ["running", "interrupted"];
    else if (opts.status) filter.status = opts.status;
    if (!seen) filter.limit = opts.limit;
    const runs = catalog.runs(filter).map((r) => asSeen(r, now));
    return seen ? runs.filter((r) => r.status === opts.status).slice(0, opts.limit) : runs;
  } finally {
    if (ctx.catalog === undefined) catalog.close();
  }
}

/**
 * The warnings of the runs that recorded some (the catalog keeps their count), from their backups'
 * manifests, by run id. Only a set's local folder is read (a remote one would slow the listing):
 * a run whose backup is elsewhere, gone (pruned) or unreadable is left out.
 */
export async function runWarnings(config: Config, runs: RunRecord[]): Promise<Map<number, StoredWarning[]>> {
  const out = new Map<number, StoredWarning[]>();
  const bySet = new Map<string, RunRecord[]>();
  for (const r of runs) {
    if (r.warnings === 0 || r.backup === null) continue;
    const list = bySet.get(r.set) ?? [];
    list.push(r);
    bySet.set(r.set, list);
  }
  for (const [setId, list] of bySet) {
    const set = config.sets.get(setId);
    if (set === undefined || (set.folderSpec !== undefined && set.folderSpec.config.type !== "local"))
      continue;
    const dest = destinationOf(set);
    try {
      for (const r of list) {
        const header = await readManifestHeader(dest, r.backup as string).catch(() => undefined);
        if (header) out.set(r.id, header.warnings);
      }
    } finally {
      await closeQuietly(dest);
    }
  }
  return out;
}
