import { type BackupResult, runBackup } from "../backup/run.ts";
import { backupRecord, type Catalog, OWN_FOLDER, type RunTrigger } from "../catalog/catalog.ts";
import { interruptGoneRuns } from "../catalog/interrupted.ts";
import { openCatalog } from "../catalog/reconcile.ts";
import type { SetConfig } from "../config/load.ts";
import type { CopyOutcome, CopyRetry } from "../copy/copy-set.ts";
import { BschedError } from "../core/errors.ts";
import type { BackupMode, BackupSummary, BackupType, Warning } from "../core/types.ts";
import type { Destination } from "../destination/destination.ts";
import { configNotifier, type NotifyOutcome } from "../notify/notify.ts";
import { type NotifyPayload, wants } from "../notify/webhook.ts";
import { diskUsage } from "../platform/disk.ts";
import { hostName } from "../platform/host.ts";
import { fromOsError } from "../platform/os-errors.ts";
import type { PruneResult } from "../retention/prune.ts";
import { type OpContext, progressTo, throwIfAborted } from "./context.ts";
import { copyNow } from "./copy.ts";
import { pruneAfterBackup } from "./prune.ts";

export interface BackupNowOptions {
  set: SetConfig;
  mode?: BackupMode | undefined;
  type?: BackupType | undefined;
  /** Apply the set's keep policy after a successful backup (default true; `--no-prune` says false). */
  prune?: boolean | undefined;
  trigger?: RunTrigger | undefined;
  /** Where to back up and prune: overrides the set's own destination (default destinationOf(set)). */
  destination?: Destination | undefined;
  /**
   * A catalog run already started for this backup (the daemon's queue starts it when the job
   * leaves the queue, with its slot); without it the backup starts a run of its own (`planned` null).
   */
  runId?: number | undefined;
  /**
   * Asked when the set's run lock is held by another process (a manual backup elsewhere): resolve
   * true to try again, in the same catalog run (the daemon waits and retries), false to fail with
   * LOCKED (the default).
   */
  whenLocked?: ((e: BschedError) => Promise<boolean>) | undefined;
  /**
   * Sends the outcome when the set's `notify.on` asks for it (and a success in any case: it ends a
   * series of failures, src/notify/repeats.ts). Default: src/notify/notify.ts's notifier, awaited
   * (a CLI must not exit before it is sent); the daemon passes one that sends in the background.
   */
  notify?: Notifier | undefined;
  /**
   * After the backup (and its prune), copy to the set's `copies:` (default true). `copyTo`: used
   * instead of opening a destination of the same name (a test's fault-injecting wrapper);
   * `copyRetry`/`copySleep`: the backoff of a failing destination (tests: short waits).
   */
  copy?: boolean | undefined;
  copyTo?: Destination[] | undefined;
  copyRetry?: CopyRetry | undefined;
  copySleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
}

/** Sends a run's outcome; never throws for a webhook or a mail server that is down (makeNotifier's contract). */
export type Notifier = (set: SetConfig, payload: NotifyPayload) => Promise<unknown>;

export interface BackupNowResult extends BackupResult {
  /** The keep policy applied after the backup; undefined when the set has none or prune was off. */
  pruned?: PruneResult | undefined;
  /** The catalog run id that recorded this backup (undefined when the catalog was unusable). */
  runId?: number | undefined;
  /** How the copy to each destination of the set's `copies:` ended (empty: none). */
  copies?: CopyOutcome[] | undefined;
  /** One COPY_FAILED warning per destination that failed after its retries (exit 3). */
  copyWarnings?: Warning[] | undefined;
}

/**
 * Back up one set now: run → record in the catalog → prune WITH the catalog (so a pruned backup
 * leaves the catalog at once, not at the next reconcile). The catalog is best effort: one that
 * cannot be opened or written is reported as a `catalog` event, never a reason to fail the backup.
 * Then notify: the webhook hears a manual backup as it hears a scheduled one (`notify.on`); a
 * cancelled backup is not notified (someone asked for it to stop).
 */
export async function backupNow(ctx: OpContext, opts: BackupNowOptions): Promise<BackupNowResult> {
  const { config, clock, set } = { ...ctx, ...opts };
  throwIfAborted(ctx.signal, `backup of set ${set.id}`);
  const emit = ctx.progress ?? (() => undefined);
  const guard = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      emit({
        kind: "catalog",
        message: `catalog in ${config.state}: could not ${what}: ${(e as Error).message}`,
      });
    }
  };
  let catalog: Catalog | undefined = ctx.catalog;
  let runId: number | undefined;
  guard("open it", () => {
    catalog ??= openCatalog(config);
    runId =
      opts.runId ??
      catalog.startRun({
        set: set.id,
        planned: null,
        trigger: opts.trigger ?? "manual",
        startedAt: clock.now().toISOString(),
      });
  });
  const notifier = opts.notify ?? configNotifier(config, clock);
  const notify = async (payload: Omit<NotifyPayload, "tool" | "set" | "host">) => {
    if (set.notify === undefined || ctx.signal?.aborted) return;
    if (!wants(set.notify, payload.event) && payload.event !== "success") return;
    const full: NotifyPayload = { tool: "bsched", set: set.id, host: hostName(), ...payload };
    // The catalog's record is the run's truth (its slot, its start): the payload says what it says.
    const run = catalog !== undefined && runId !== undefined ? safeGetRun(catalog, runId) : undefined;
    if (run)
      Object.assign(full, { planned: run.planned, startedAt: run.startedAt, finishedAt: run.finishedAt });
    const r = (await notifier(set, full)) as NotifyOutcome | undefined;
    for (const line of r?.errors ?? [])
      emit({ kind: "notify", sent: false, message: `${line}; the backup itself is not affected` });
  };
  // The first command that writes the catalog after a killed run records it (issue 9).
  guard("record interrupted runs", () => {
    if (catalog !== undefined) interruptGoneRuns(catalog, clock.now());
  });
  try {
    let result: BackupResult;
    try {
      result = await runBackup({
        set,
        timezone: config.timezone,
        clock,
        mode: opts.mode,
        type: opts.type,
        destination: opts.destination,
        blockMin: blockMinFromEnv(),
        onProgress: progressTo(ctx.progress, clock),
        signal: ctx.signal,
        onWarning: (w) => emit({ kind: "warning", warning: w }),
        ...(ctx.progress
          ? {
              onLog: (line: string) => emit({ kind: "log", line }),
              onNotice: (w) => emit({ kind: "notice", warning: w }),
            }
          : {}),
      });
    } catch (e) {
      // The set's run lock is held elsewhere: the caller may wait and try again, in the same run.
      if (e instanceof BschedError && e.code === "LOCKED" && (await opts.whenLocked?.(e)))
        return await backupNow(ctx, { ...opts, runId });
      const now = clock.now();
      guard("record the failure", () => {
        if (catalog !== undefined && runId !== undefined) recordFailedRun(catalog, runId, e, now);
      });
      await notify({
        event: "failure",
        status: "failed",
        planned: null,
        startedAt: null,
        finishedAt: now.toISOString(),
        backup: null,
        files: 0,
        bytes: 0,
        warnings: 0,
        ...failurePayload(e),
      });
      throw e;
    }
    const s = result.summary;
    guard("record the run", () => {
      if (catalog !== undefined && runId !== undefined)
        recordBackupRun(catalog, runId, set.id, s, clock.now(), opts.destination?.name);
    });
    // Retention follows every successful backup, manual ones too (never before it completes).
    const pruned =
      set.keep && opts.prune !== false
        ? await pruneAfterBackup(ctx, set, catalog, opts.destination)
        : undefined;
    // Then every copy (issue 11): what each destination lacks, this backup included, oldest first.
    const copied =
      set.copies.length > 0 && opts.copy !== false
        ? await copyNow(
            { ...ctx, catalog },
            {
              set,
              from: opts.destination,
              destinations: opts.copyTo,
              retry: opts.copyRetry,
              sleep: opts.copySleep,
              prune: opts.prune,
              notify: opts.notify,
            },
          )
        : undefined;
    const copyWarnings = copied?.warnings ?? [];
    if (copyWarnings.length > 0) {
      // The run ends with warnings: `history` and `status` show which copy failed and the fix.
      guard("record the failed copies", () => {
        if (catalog !== undefined && runId !== undefined)
          catalog.finishRun(runId, {
            finishedAt: clock.now().toISOString(),
            status: "warnings",
            warnings: s.warnings.length + copyWarnings.length,
            files: s.files,
            bytes: s.bytes,
            backup: s.name,
            error: copyWarnings.map((w) => w.message).join("\n"),
            errorCode: "COPY_FAILED",
          });
      });
    }
    await notify({
      event: "success",
      status: s.warnings.length + copyWarnings.length > 0 ? "warnings" : "ok",
      planned: null,
      startedAt: s.startedAt,
      finishedAt: s.finishedAt,
      backup: s.name,
      files: s.files,
      bytes: s.bytes,
      warnings: s.warnings.length + copyWarnings.length,
      error: null,
    });
    await checkDisk(set, config.notify?.diskWarnPercent, notify);
    return { ...result, pruned, runId, copies: copied?.copies ?? [], copyWarnings };
  } finally {
    // Only a catalog this operation opened is closed here; the daemon's stays open.
    if (ctx.catalog === undefined) guard("close it", () => catalog?.close());
  }
}

function safeGetRun(catalog: Catalog, id: number) {
  try {
    return catalog.getRun(id);
  } catch {
    return undefined;
  }
}

/** A failure's `error`, `code` and `hint` as a notification carries them (the catalog's record of it). */
function failurePayload(e: unknown): Pick<NotifyPayload, "error" | "code" | "hint"> {
  const f = failureOf(e);
  return { error: f.error, code: f.errorCode ?? null, hint: f.errorHint ?? null };
}

/**
 * After a backup into a local folder: a `disk_low` event when its filesystem is fuller than
 * `server.notify.diskWarnPercent` (default 90). Only when the set would send it; a folder that
 * cannot be measured is not a reason for anything.
 */
async function checkDisk(
  set: SetConfig,
  threshold: number | undefined,
  notify: (p: Omit<NotifyPayload, "tool" | "set" | "host">) => Promise<void>,
): Promise<void> {
  if (!wants(set.notify, "disk_low")) return;
  if (set.folderSpec !== undefined && set.folderSpec.config.type !== "local") return;
  const limit = threshold ?? 90;
  const d = await diskUsage(set.folder).catch(() => undefined);
  if (d === undefined || d.usedPercent < limit) return;
  await notify({
    event: "disk_low",
    status: "ok",
    planned: null,
    startedAt: null,
    finishedAt: null,
    backup: null,
    files: 0,
    bytes: 0,
    warnings: 0,
    error: `the filesystem holding ${set.folder} is ${d.usedPercent.toFixed(1)} % full (server.notify.diskWarnPercent: ${limit})`,
    disk: { path: set.folder, ...d, thresholdPercent: limit },
  });
}

/**
 * The record step of a successful backup, manual or scheduled: the run finished (ok, or warnings)
 * and the backup listed. Returns the run's status.
 */
export function recordBackupRun(
  catalog: Catalog,
  runId: number,
  set: string,
  s: BackupSummary,
  now: Date,
  /** The name of the destination it was written to (default: the set's own folder). */
  destination: string = OWN_FOLDER,
): "ok" | "warnings" {
  const status = s.warnings.length > 0 ? "warnings" : "ok";
  catalog.finishRun(runId, {
    finishedAt: now.toISOString(),
    status,
    warnings: s.warnings.length,
    files: s.files,
    bytes: s.bytes,
    backup: s.name,
  });
  catalog.putBackup(backupRecord(set, s, destination));
  return status;
}

/**
 * The record step of a failed backup, manual or scheduled: the message, and the code and hint a
 * person needs to act on it (`bsched history` shows them). An OS error gets its bsched code as the
 * CLI would print it; anything else unexpected is `INTERNAL`. A bare string (an older caller)
 * records the message alone.
 */
export function recordFailedRun(catalog: Catalog, runId: number, error: unknown, now: Date): void {
  catalog.finishRun(runId, { finishedAt: now.toISOString(), status: "failed", ...failureOf(error) });
}

/** What a run record keeps of an error: message, stable code, hint. */
export function failureOf(error: unknown): { error: string; errorCode?: string; errorHint?: string } {
  if (typeof error === "string") return { error };
  const e = fromOsError(error);
  if (e instanceof BschedError) {
    return { error: e.message, errorCode: e.code, ...(e.hint === undefined ? {} : { errorHint: e.hint }) };
  }
  return {
    error: (e as Error)?.message ?? String(e),
    errorCode: "INTERNAL",
    errorHint:
      "an unexpected failure: the daemon's log (or the command run with BSCHED_DEBUG=1) says where; report it",
  };
}

/**
 * `BSCHED_BLOCK_MIN` (bytes): files at least this long get block maps instead of the default
 * 8 MiB (docs/design.md "Block incrementals"); tests lower it to keep their data small.
 */
function blockMinFromEnv(): number | undefined {
  const raw = process.env.BSCHED_BLOCK_MIN;
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new BschedError("USAGE", `BSCHED_BLOCK_MIN=${JSON.stringify(raw)} is not a number of bytes`, {
      hint: "set it to a whole number of bytes (e.g. 1048576), or unset it for the default 8 MiB",
    });
  }
  return n;
}
