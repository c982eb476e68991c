import type { RunRecord } from "../catalog/catalog.ts";
import { asSeen } from "../catalog/interrupted.ts";
import { openCatalog } from "../catalog/reconcile.ts";
import { type OpContext, throwIfAborted } from "./context.ts";

/**
 * `bsched history`: past runs, newest first, at most `limit`. Reads only: a run whose process is
 * gone shows as interrupted; the next backup, daemon start or `catalog check` records it so.
 */
export function history(
  ctx: Pick<OpContext, "config" | "clock" | "catalog" | "signal">,
  opts: { set?: string | undefined; limit: number },
): RunRecord[] {
  throwIfAborted(ctx.signal);
  const catalog = ctx.catalog ?? openCatalog(ctx.config);
  try {
    const now = ctx.clock.now();
    return catalog
      .runs({ ...(opts.set ? { set: opts.set } : {}), limit: opts.limit })
      .map((r) => asSeen(r, now));
  } finally {
    if (ctx.catalog === undefined) catalog.close();
  }
}
