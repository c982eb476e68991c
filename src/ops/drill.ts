import type { Catalog, DrillRecord, NewDrill, RunTrigger } from "../catalog/catalog.ts";
import { openCatalog } from "../catalog/reconcile.ts";
import { drillConfigOf, type SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import {
  closeQuietly,
  destinationNames,
  OWN_FOLDER_NAME,
  openNamedDestination,
} from "../destination/by-name.ts";
import type { Destination, Lease } from "../destination/destination.ts";
import { destinationOf } from "../destination/for-set.ts";
import { drillPlace, LOCAL_PLACE, placeUnavailable } from "../drill/drill.ts";
import { removeScratchLeftovers } from "../drill/scratch.ts";
import { configNotifier, type NotifyOutcome, payloadOf } from "../notify/notify.ts";
import { wants } from "../notify/webhook.ts";
import type { Notifier } from "./backup-now.ts";
import { type OpContext, progressTo, throwIfAborted } from "./context.ts";

export interface DrillNowOptions {
  set: SetConfig;
  /** One place only (`--dest NAME`: `local`, or any entry of `destinations:`); default the drill's `from`. */
  place?: string | undefined;
  /** Only this backup (`--backup NAME`), from each place. */
  backup?: string | undefined;
  trigger?: RunTrigger | undefined;
  /** Also a random older kept backup after the newest (default true). */
  older?: boolean | undefined;
  random?: (() => number) | undefined;
  /** Posts a `drill_failed` notification (default: the set's webhook, awaited, when `notify.on` asks for it). */
  notify?: Notifier | undefined;
  /**
   * Asked when the set's run lock (or the place's) is held by another run (a backup, a copy, a
   * prune): resolve true to try again, false to fail with LOCKED (the default).
   */
  whenLocked?: ((e: BschedError) => Promise<boolean>) | undefined;
  /** Used instead of opening the place of that name (a test's fault-injecting wrapper). */
  destinations?: Map<string, Destination> | undefined;
  /** From this size on a database gets quick_check first (default 1 GiB; tests: small). */
  quickFrom?: number | undefined;
}

export interface DrillNowResult {
  set: string;
  /** Every drill proved its backup restorable. */
  ok: boolean;
  /** Each restore's evidence as recorded (`id` 0 when the catalog could not record it). */
  drills: DrillRecord[];
  /** Leftovers of crashed drills removed from the scratch folder first. */
  removed: string[];
}

/**
 * `bsched drill SET` (docs/design.md "Restore drills"): holding the set's run lock (so no backup
 * or prune of the set runs meanwhile), for each place of the drill's `from`: restore the newest
 * backup there and a random older kept one into the scratch folder, check every file's sha256,
 * every SQLite database's integrity and the optional command, time the restore, record each in
 * the catalog and notify `drill_failed` for each failure. The scratch folder is removed whatever
 * happens; a crashed drill's is removed by the next. A failed drill is a result (ok false), not
 * an exception; LOCKED, CANCELLED and usage errors are thrown.
 */
export async function drillNow(ctx: OpContext, opts: DrillNowOptions): Promise<DrillNowResult> {
  const { config, clock, set } = { ...ctx, ...opts };
  throwIfAborted(ctx.signal, `drill of set ${set.id}`);
  const drill = drillConfigOf(config, set);
  const places = opts.place !== undefined ? [placeName(opts.place)] : drill.from;
  for (const p of places) {
    if (p !== LOCAL_PLACE && !config.destinations.has(p))
      throw new BschedError("USAGE", `unknown place "${p}" to drill set ${set.id} from (${config.file})`, {
        hint: `known: local (the set's own backup folder), ${destinationNames(config)
          .filter((n) => n !== OWN_FOLDER_NAME)
          .join(", ")}`.replace(/, $/, ""),
      });
  }
  const emit = ctx.progress ?? (() => undefined);
  const log = (line: string) => emit({ kind: "log", line });
  const own = opts.destinations?.get(LOCAL_PLACE) ?? destinationOf(set);
  const opened: Destination[] = opts.destinations?.has(LOCAL_PLACE) ? [] : [own];
  const leases: Lease[] = [];
  let catalog: Catalog | undefined = ctx.catalog;
  const guard = <T>(what: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (e) {
      emit({
        kind: "catalog",
        message: `catalog in ${config.state}: could not ${what}: ${(e as Error).message}`,
      });
      return undefined;
    }
  };
  try {
    // The set's run lock: a backup or prune of the set waits for the drill, and the drill for them.
    leases.push(await lockWaiting(own, set, opts, clock));
    const removed = await removeScratchLeftovers(drill.scratch);
    for (const r of removed) log(`removed a crashed drill's scratch folder ${r}`);
    guard("open it", () => {
      catalog ??= openCatalog(config);
    });
    const drills: DrillRecord[] = [];
    for (const place of places) {
      throwIfAborted(ctx.signal, `drill of set ${set.id}`);
      const records = await drillFrom(ctx, opts, place, own, opened, leases, log);
      for (const r of records) {
        const id = guard("record the drill", () => catalog?.addDrill(r)) ?? 0;
        drills.push({ ...r, id });
        if (r.ok) {
          log(
            `drill of set ${set.id}: ${r.backup} (${r.pick}) from ${place} restored in ${((r.restoreMs ?? 0) / 1000).toFixed(1)} s and passed ${r.checks.length} check(s)`,
          );
        } else {
          log(`drill of set ${set.id} from ${place} FAILED: ${r.error}`);
          await notifyFailed(ctx, opts, r);
        }
      }
    }
    return { set: set.id, ok: drills.every((d) => d.ok), drills, removed };
  } finally {
    for (const l of leases.reverse()) await l.release().catch(() => undefined);
    for (const d of opened) await closeQuietly(d);
    if (ctx.catalog === undefined) guard("close it", () => catalog?.close());
  }
}

/** `folder` (what `--dest` calls the set's own folder elsewhere) is `local` here too. */
function placeName(p: string): string {
  return p === OWN_FOLDER_NAME ? LOCAL_PLACE : p;
}

async function drillFrom(
  ctx: OpContext,
  opts: DrillNowOptions,
  place: string,
  own: Destination,
  opened: Destination[],
  leases: Lease[],
  log: (line: string) => void,
): Promise<NewDrill[]> {
  const { config, clock } = ctx;
  const set = opts.set;
  const base = {
    set,
    drill: drillConfigOf(config, set),
    place,
    backup: opts.backup,
    older: opts.older,
    random: opts.random,
    trigger: opts.trigger ?? "manual",
    clock,
    signal: ctx.signal,
    onProgress: progressTo(ctx.progress, clock),
    log,
    quickFrom: opts.quickFrom,
  };
  if (place === LOCAL_PLACE) return drillPlace({ ...base, dest: own });
  let dest = opts.destinations?.get(place);
  try {
    if (dest === undefined) {
      dest = await openNamedDestination(config, place, set);
      if (dest) opened.push(dest);
    }
    // Its own lock for the set too: no copy to it, nor its retention, removes what is being read.
    if (dest) leases.push(await lockWaiting(dest, set, opts, clock));
  } catch (e) {
    if (e instanceof BschedError && e.code === "LOCKED") throw e;
    // Not reachable, not mounted: a drill that failed, recorded and notified like any other.
    return [placeUnavailable(base, e)];
  }
  return drillPlace({ ...base, dest: dest as Destination });
}

async function lockWaiting(
  dest: Destination,
  set: SetConfig,
  opts: DrillNowOptions,
  clock: OpContext["clock"],
): Promise<Lease> {
  for (;;) {
    try {
      return await dest.lock(set.id, `drill of set ${set.id}`, clock);
    } catch (e) {
      if (e instanceof BschedError && e.code === "LOCKED" && (await opts.whenLocked?.(e))) continue;
      throw e;
    }
  }
}

async function notifyFailed(ctx: OpContext, opts: DrillNowOptions, r: NewDrill): Promise<void> {
  const set = opts.set;
  if (!wants(set.notify, "drill_failed") || ctx.signal?.aborted) return;
  const payload = payloadOf(set.id, {
    event: "drill_failed",
    status: "failed",
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    backup: r.backup,
    files: r.files,
    bytes: r.bytes,
    error: r.error,
    code: r.errorCode,
    hint: r.errorHint,
    destination: r.destination,
    checks: r.checks.map((c) => ({ name: c.name, ok: c.ok, message: c.detail })),
  });
  // The one notifier (webhook and email, repeats counted): what backups and copies use too.
  const notifier = opts.notify ?? configNotifier(ctx.config, ctx.clock);
  const out = (await notifier(set, payload)) as NotifyOutcome | undefined;
  for (const line of out?.errors ?? [])
    ctx.progress?.({ kind: "notify", sent: false, message: `${line}; the drill's record is kept` });
}
