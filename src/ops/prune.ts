import type { Catalog } from "../catalog/catalog.ts";
import { openCatalog } from "../catalog/reconcile.ts";
import type { SetConfig } from "../config/load.ts";
import { assessBackups, diskBytesOf } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";
import { destinationOf } from "../destination/for-set.ts";
import { type KeepPolicy, planRetention } from "../retention/policy.ts";
import { type PruneResult, pruneSet, retentionItems } from "../retention/prune.ts";
import { removalReasons } from "../retention/why.ts";
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

export interface PrunePreview {
  set: string;
  /** The policy applied (the destination's own `keep`, else the set's); null: none, every backup is kept. */
  policy: KeepPolicy | null;
  /** Oldest first, each with why it is kept. */
  keep: { name: string; reasons: string[] }[];
  /** Newest first (the order prune deletes in), each with why, and what deleting it frees on disk. */
  remove: { name: string; why: string; diskBytes: number }[];
  /** Backups that cannot be restored: never deleted by the policy nor counted (`prune --broken`). */
  broken: { name: string; reason: string }[];
}

/**
 * What the keep policy would delete now and why each other backup is kept (the window's prune
 * preview; `bsched prune --dry-run` plans the same with planRetention). Reads only: no lock, no
 * catalog. A set without `keep` keeps everything: every backup is listed as kept, saying so.
 */
export async function prunePreview(
  ctx: Pick<OpContext, "config" | "signal">,
  set: SetConfig,
  opts: { destination?: Destination | undefined } = {},
): Promise<PrunePreview> {
  throwIfAborted(ctx.signal);
  const dest = opts.destination ?? destinationOf(set);
  try {
    const backups = await assessBackups(dest, set.letter, set.id);
    const items = retentionItems(backups);
    const tz = ctx.config.timezone;
    const plan = set.keep
      ? planRetention(items, set.keep, tz)
      : planRetention(items, { last: Number.MAX_SAFE_INTEGER }, tz);
    const why = set.keep ? removalReasons(items, set.keep, tz, plan) : {};
    const byName = new Map(backups.map((b) => [b.name, b]));
    const remove = await Promise.all(
      plan.remove.map(async (name) => {
        const b = byName.get(name);
        return {
          name,
          why: why[name] ?? "",
          diskBytes: b?.header ? await diskBytesOf(dest, name, b.header) : 0,
        };
      }),
    );
    return {
      set: set.id,
      policy: set.keep ?? null,
      keep: plan.keep.map((name) => ({
        name,
        reasons: set.keep ? (plan.reasons[name] ?? []) : ["no keep policy: every backup is kept"],
      })),
      remove,
      broken: plan.broken,
    };
  } finally {
    if (opts.destination === undefined) await dest.close?.().catch(() => undefined);
  }
}
