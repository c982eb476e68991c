import type { VerifyResult } from "../verify/verify.ts";
import type { BackupNowOptions, BackupNowResult } from "./backup-now.ts";
import type { OpContext } from "./context.ts";
import type { DrillNowOptions, DrillNowResult } from "./drill.ts";
import type { RestoreOpResult, RestoreSource, restore } from "./restore.ts";
import type { RunHandle, RunInfo, RunRegistry } from "./runs.ts";
import type { VerifyTarget, verify } from "./verify.ts";

/*
 * The operations that take a while, started as runs of a registry: listed while they run, their
 * events to every subscriber (`ctx.progress` is subscribed first), cancelled by `handle.cancel()`,
 * `registry.cancel(id)` or `ctx.signal`. The operation itself is the plain function (backupNow,
 * restore, verify) given the run's sink and signal: one code path, watched or not. Each is loaded
 * when its run starts: a restore or a verify does not load (nor hold in memory) the backup
 * pipeline, its notifiers and their mail library, nor a backup the restore's.
 */

/**
 * `backupNow` as a run of `runs`. `via`: what does the backup, given the run's sink and signal
 * (default backupNow; a caller may hand it to another path, such as a daemon's queue).
 */
export function startBackup(
  runs: RunRegistry,
  ctx: OpContext,
  opts: BackupNowOptions,
  via?: (ctx: OpContext, opts: BackupNowOptions) => Promise<BackupNowResult>,
): RunHandle<BackupNowResult> {
  const scheduled = opts.trigger === "schedule" || opts.trigger === "catch-up";
  const trigger: RunInfo["trigger"] = scheduled ? "schedule" : "manual";
  return runs.start(
    { kind: "backup", set: opts.set.id, trigger },
    async (run) =>
      (via ?? (await import("./backup-now.ts")).backupNow)(
        { ...ctx, progress: run.progress, signal: run.signal },
        opts,
      ),
    { signal: ctx.signal, progress: ctx.progress },
  );
}

/** `restore` as a run of `runs`. */
export function startRestore(
  runs: RunRegistry,
  ctx: Parameters<typeof restore>[0],
  source: RestoreSource,
  opts: Parameters<typeof restore>[2],
): RunHandle<RestoreOpResult> {
  return runs.start(
    { kind: "restore", set: "set" in source ? source.set.id : undefined },
    async (run) =>
      (await import("./restore.ts")).restore(
        { ...ctx, progress: run.progress, signal: run.signal },
        source,
        opts,
      ),
    { signal: ctx.signal, progress: ctx.progress },
  );
}

/** `verify` as a run of `runs`. */
export function startVerify(
  runs: RunRegistry,
  ctx: Parameters<typeof verify>[0],
  target: VerifyTarget,
  opts: Parameters<typeof verify>[2] = {},
): RunHandle<VerifyResult> {
  return runs.start(
    { kind: "verify", set: "set" in target ? target.set.id : undefined },
    async (run) =>
      (await import("./verify.ts")).verify(
        { ...ctx, progress: run.progress, signal: run.signal },
        target,
        opts,
      ),
    { signal: ctx.signal, progress: ctx.progress },
  );
}

// `startCopy` lives in copy.ts (`bsched copy` imports it from there): re-exported here, it made every
// restore and verify load the copy machinery, the notifiers and their mail library.

/** `drillNow` as a run of `runs` (kind `drill`): listed while it runs, cancelled like the others. */
export async function startDrill(
  runs: RunRegistry,
  ctx: OpContext,
  opts: DrillNowOptions,
): Promise<RunHandle<DrillNowResult>> {
  // Loaded when a drill starts: `bsched backup` never pays for the drill's modules.
  const { drillNow } = await import("./drill.ts");
  const scheduled = opts.trigger === "schedule" || opts.trigger === "catch-up";
  return runs.start(
    { kind: "drill", set: opts.set.id, trigger: scheduled ? "schedule" : "manual" },
    (run) => drillNow({ ...ctx, progress: run.progress, signal: run.signal }, opts),
    { signal: ctx.signal, progress: ctx.progress },
  );
}
