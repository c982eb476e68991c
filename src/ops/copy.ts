import type { Catalog } from "../catalog/catalog.ts";
import { openCatalog } from "../catalog/reconcile.ts";
import type { DestinationSpec, SetConfig } from "../config/load.ts";
import { type CopyOutcome, type CopyRetry, type CopyTarget, copySet } from "../copy/copy-set.ts";
import { BschedError } from "../core/errors.ts";
import type { Warning } from "../core/types.ts";
import type { Destination } from "../destination/destination.ts";
import { destinationOf } from "../destination/for-set.ts";
import { openDestination } from "../destination/open.ts";
import { configNotifier, type NotifyOutcome } from "../notify/notify.ts";
import { type NotifyPayload, wants } from "../notify/webhook.ts";
import { hostName } from "../platform/host.ts";
import type { KeepPolicy } from "../retention/policy.ts";
import { type OpContext, progressTo, throwIfAborted } from "./context.ts";
import type { RunHandle, RunRegistry } from "./runs.ts";

export interface CopyNowOptions {
  set: SetConfig;
  /** The destinations to copy to, by their names in `destinations:` (default: the set's `copies:`). */
  to?: string[] | undefined;
  /** Used instead of opening a destination of the same name (a test's fault-injecting wrapper). */
  destinations?: Destination[] | undefined;
  /** Where the backups are read (default destinationOf(set)): the set's own folder. */
  from?: Destination | undefined;
  retry?: CopyRetry | undefined;
  sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /** Apply each destination's keep policy after its copies (default true). */
  prune?: boolean | undefined;
  /** Sends a `copy_failed` event (default: src/notify/notify.ts's notifier, awaited, when `notify.on` asks for it). */
  notify?: ((set: SetConfig, payload: NotifyPayload) => Promise<unknown>) | undefined;
}

export interface CopyNowResult {
  set: string;
  copies: CopyOutcome[];
  /** One COPY_FAILED warning per destination that failed after its retries. */
  warnings: Warning[];
}

/** The `copies` entries of `--json` (bsched backup and bsched copy): what a script needs. */
export function copySummary(c: CopyOutcome): {
  destination: string;
  ok: boolean;
  copied: number;
  newest: string | null;
  error?: string;
  code?: string;
  hint?: string;
} {
  return {
    destination: c.destination,
    ok: c.ok,
    copied: c.copied.length,
    newest: c.newest,
    ...(c.ok ? {} : { error: c.error ?? "failed", code: c.code ?? "COPY_FAILED" }),
    ...(c.ok || c.hint === undefined ? {} : { hint: c.hint }),
  };
}

/** The destinations a copy of `set` goes to: `to` by name (any of `destinations:`), else its copies. */
export function copySpecs(ctx: OpContext, set: SetConfig, to: string[] | undefined): DestinationSpec[] {
  if (to === undefined || to.length === 0) return set.copies;
  return to.map((name) => {
    const spec = ctx.config.destinations.get(name);
    if (!spec) {
      const known = [...ctx.config.destinations.keys()].join(", ") || "(none)";
      throw new BschedError("USAGE", `unknown destination "${name}" in ${ctx.config.file}`, {
        hint: `known destinations: ${known}`,
        exitCode: 2,
      });
    }
    if (set.folderSpec?.name === name) {
      throw new BschedError("USAGE", `destination "${name}" is set ${set.id}'s own folder: nothing to copy`, {
        hint: `copy to another destination (sets.${set.id}.copies lists them)`,
        exitCode: 2,
      });
    }
    return spec;
  });
}

/**
 * Copy a set's backups to its destinations now (`bsched copy`, and every backup after its own
 * prune): what each lacks, oldest first, checked, recorded, then its retention. A destination
 * that fails after its retries is a COPY_FAILED warning (an event, the result, the catalog's copy
 * record, a `copy_failed` notification); the others and the primary are not affected. A cancel
 * fails with CANCELLED, each destination's staging area aborted.
 */
export async function copyNow(ctx: OpContext, opts: CopyNowOptions): Promise<CopyNowResult> {
  const { config, clock, set } = { ...ctx, ...opts };
  throwIfAborted(ctx.signal, `copy of set ${set.id}`);
  const specs = copySpecs(ctx, set, opts.to);
  const emit = ctx.progress ?? (() => undefined);
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
  const catalog: Catalog | undefined = ctx.catalog ?? guard("open it", () => openCatalog(config));
  const opened: Destination[] = [];
  const from = opts.from ?? destinationOf(set);
  if (!opts.from) opened.push(from);
  const targets: CopyTarget[] = specs.map((spec) => {
    let dest = opts.destinations?.find((d) => d.name === spec.name);
    if (!dest) {
      dest = openDestination(spec, { set: set.id });
      opened.push(dest);
    }
    return {
      dest,
      keep: spec.config.keep as KeepPolicy | undefined,
      verify: spec.config.verify,
      attempts: spec.config.attempts,
      transfers: spec.config.transfers,
    };
  });
  try {
    const copies = await copySet({
      set,
      from,
      targets,
      clock,
      timezone: config.timezone,
      catalog,
      onProgress: progressTo(ctx.progress, clock),
      onRetry: (dest, attempt, e, delayMs) =>
        emit({
          kind: "log",
          line: `copy of set ${set.id} to ${dest}: attempt ${attempt} failed (${e.message}); trying again in ${Math.round(delayMs / 1000)} s`,
        }),
      onCatalogError: (what, e) =>
        emit({
          kind: "catalog",
          message: `catalog in ${config.state}: could not ${what}: ${(e as Error).message}`,
        }),
      signal: ctx.signal,
      retry: opts.retry,
      sleep: opts.sleep,
      prune: opts.prune,
    });
    const warnings: Warning[] = [];
    for (const c of copies) {
      guard("record the copy", () =>
        catalog?.putCopy({
          set: set.id,
          destination: c.destination,
          at: clock.now().toISOString(),
          ok: c.ok,
          copied: c.copied.length,
          newest: c.newest,
          error: c.ok ? null : (c.error ?? null),
          errorCode: c.ok ? null : (c.code ?? "COPY_FAILED"),
          errorHint: c.ok ? null : (c.hint ?? null),
        }),
      );
      if (c.ok) continue;
      const w: Warning = {
        path: c.where,
        code: "COPY_FAILED",
        message: `copy of set ${set.id} to ${c.destination} failed after ${c.attempts} attempt(s): ${c.error}${c.code && c.code !== "COPY_FAILED" ? ` [${c.code}]` : ""}; ${c.hint ? `${c.hint}; then ` : ""}the next backup, or \`bsched copy ${set.id} --to ${c.destination}\`, sends what it lacks (the backup itself and the other copies are not affected)`,
      };
      warnings.push(w);
      emit({ kind: "warning", warning: w });
      await notifyCopyFailed(ctx, opts, c, emit);
    }
    return { set: set.id, copies, warnings };
  } finally {
    if (ctx.catalog === undefined) guard("close it", () => catalog?.close());
    await Promise.all(opened.map((d) => d.close?.()));
  }
}

async function notifyCopyFailed(
  ctx: OpContext,
  opts: CopyNowOptions,
  c: CopyOutcome,
  emit: NonNullable<OpContext["progress"]>,
): Promise<void> {
  const { set } = opts;
  if (!wants(set.notify, "copy_failed") || ctx.signal?.aborted) return;
  const payload: NotifyPayload = {
    tool: "bsched",
    event: "copy_failed",
    set: set.id,
    host: hostName(),
    planned: null,
    status: "failed",
    startedAt: null,
    finishedAt: ctx.clock.now().toISOString(),
    backup: c.newest,
    files: 0,
    bytes: 0,
    warnings: 1,
    error: c.error ?? null,
    code: c.code ?? "COPY_FAILED",
    hint: c.hint ?? null,
    destination: c.destination,
  };
  const notifier = opts.notify ?? configNotifier(ctx.config, ctx.clock);
  const r = (await notifier(set, payload)) as NotifyOutcome | undefined;
  for (const line of r?.errors ?? [])
    emit({
      kind: "notify",
      sent: false,
      message: `${line} (copy to ${c.destination}); the copies themselves are not affected`,
    });
}

/**
 * `copyNow` as a run of `runs` (`bsched copy`; ops/start.ts re-exports it). Here, not in start.ts:
 * `bsched copy` then loads no backup, restore or verify pipeline it does not run.
 */
export function startCopy(runs: RunRegistry, ctx: OpContext, opts: CopyNowOptions): RunHandle<CopyNowResult> {
  return runs.start(
    { kind: "copy", set: opts.set.id },
    (run) => copyNow({ ...ctx, progress: run.progress, signal: run.signal }, opts),
    { signal: ctx.signal, progress: ctx.progress },
  );
}
