import type { VerifyResult } from "../verify/verify.ts";
import { type BackupNowOptions, type BackupNowResult, backupNow } from "./backup-now.ts";
import type { OpContext } from "./context.ts";
import type { DrillNowOptions, DrillNowResult } from "./drill.ts";
import { type RestoreOpResult, type RestoreSource, restore } from "./restore.ts";
import type { RunHandle, RunInfo, RunRegistry } from "./runs.ts";
import { type VerifyTarget, verify } from "./verify.ts";

/*
 * The operations that take a while, started as runs of a registry: listed while they run, their
 * events to every subscriber (`ctx.progress` is subscribed first), cancelled by `handle.cancel()`,
 * `registry.cancel(id)` or `ctx.signal`. The operation itself is the plain function (backupNow,
 * restore, verify) given the run's sink and signal: one code path, watched or not.
 */

/**
 * `backupNow` as a run of `runs`. `via`: what does the backup, given the run's sink and signal
 * (default backupNow; a caller may hand it to another path, such as a daemon's queue).
 */
export function startBackup(
  runs: RunRegistry,
  ctx: OpContext,
  opts: BackupNowOptions,
  via: (ctx: OpContext, opts: BackupNowOptions) => Promise<BackupNowResult> = backupNow,
): RunHandle<BackupNowResult> {
  const scheduled = opts.trigger === "schedule" || opts.trigger === "catch-up";
  const trigger: RunInfo["trigger"] = scheduled ? "schedule" : "manual";
  return runs.start(
    { kind: "backup", set: opts.set.id, trigger },
    (run) => via({ ...ctx, progress: run.progress, signal: run.signal }, opts),
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
    (run) => restore({ ...ctx, progress: run.progress, signal: run.signal }, source, opts),
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
    (run) => verify({ ...ctx, progress: run.progress, signal: run.signal }, target, opts),
    { signal: ctx.signal, progress: ctx.progress },
  );
}

// `bsched copy` imports it from copy.ts, which does not load the backup, restore and verify pipelines.
export { startCopy } from "./copy.ts";

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
