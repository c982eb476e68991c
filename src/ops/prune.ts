import type { Catalog } from "../catalog/catalog.ts";
import type { SetConfig } from "../config/load.ts";
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
): Promise<PruneResult> {
  throwIfAborted(ctx.signal);
  return pruneSet(set, { timezone: ctx.config.timezone, clock: ctx.clock, catalog });
}
