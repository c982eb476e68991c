import type { Catalog } from "../catalog/catalog.ts";
import { openCatalog } from "../catalog/reconcile.ts";
import type { SetConfig } from "../config/load.ts";
import type { Destination } from "../destination/destination.ts";
import { type PruneResult, pruneSet } from "../retention/prune.ts";
import { type OpContext, throwIfAborted } from "./context.ts";

/**
 * The keep policy applied after a successful backup, manual or scheduled: always with the catalog
 * when there is one, so the backups it deletes leave the catalog in the same step.
 */
export function pruneAfterBackup(
  ctx: OpContext,
  set: SetConfig,
  catalog: Catalog | undefined,
  destination?: Destination | undefined,
): Promise<PruneResult> {
  throwIfAborted(ctx.signal);
  return pruneSet(set, { timezone: ctx.config.timezone, clock: ctx.clock, catalog, destination });
}

/**
 * `bsched prune`: apply the set's keep policy now (or, `brokenOnly`, delete only the backups that
 * cannot be restored), with the catalog so the deleted backups leave it at once. A dry run only
 * plans: it opens no catalog and takes no lock.
 */
export async function prune(
  ctx: OpContext,
  set: SetConfig,
  opts: {
    dryRun?: boolean | undefined;
    brokenOnly?: boolean | undefined;
    /** Overrides the set's own destination (default destinationOf(set)). */
    destination?: Destination | undefined;
  } = {},
): Promise<PruneResult> {
  throwIfAborted(ctx.signal);
  const dryRun = opts.dryRun === true;
  const catalog = dryRun ? undefined : (ctx.catalog ?? openCatalog(ctx.config));
  try {
    return await pruneSet(set, {
      timezone: ctx.config.timezone,
      clock: ctx.clock,
      dryRun,
      catalog,
      brokenOnly: opts.brokenOnly === true,
      destination: opts.destination,
    });
  } finally {
    if (ctx.catalog === undefined) catalog?.close();
  }
}
