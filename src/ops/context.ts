import type { Catalog } from "../catalog/catalog.ts";
import type { Config } from "../config/load.ts";
import { throwIfCancelled } from "../core/cancel.ts";
import type { Progress, ProgressCallback, Warning } from "../core/types.ts";
import type { Clock } from "../platform/clock.ts";

/**
 * What an operation tells whoever runs it while it runs: the CLI's progress bar and stderr lines,
 * the daemon's log, a test's recorder. Events only inform: an operation's outcome is its result
 * (or a BschedError), never something a sink must have seen.
 */
export type OpEvent =
  /** Where the run is: phase, files and bytes done of the totals, current path, rate (core/types.ts Progress). */
  | { kind: "progress"; progress: Progress }
  | { kind: "warning"; warning: Warning }
  /** Advice that is not a defect of the backup (SAME_FILESYSTEM): kept out of the result's warnings. */
  | { kind: "notice"; warning: Warning }
  /** A line from a hook's output. */
  | { kind: "log"; line: string }
  /** The catalog could not be opened or written: the operation went on without it. */
  | { kind: "catalog"; message: string }
  /** The webhook could not be told the outcome (`sent` false): the operation itself is not affected. */
  | { kind: "notify"; sent: boolean; message: string };

export type ProgressSink = (event: OpEvent) => void;

/**
 * What every operation in src/ops takes: the loaded config, a clock, a sink for its events and a
 * signal to stop it. `catalog`: an open catalog to use (the daemon's); without it an operation that
 * records opens the one in `config.state` itself and closes it when done.
 *
 * The signal stops the operation: the pipelines (backup, restore, verify) check it between files,
 * between chunks of a file and before they publish, and fail with CANCELLED leaving what a crash
 * would (docs/design.md "Runs and cancellation"). To run an operation as a run of a RunRegistry
 * (listed, watched, cancelled by id), start it with startBackup / startRestore / startVerify.
 */
export interface OpContext {
  config: Config;
  clock: Clock;
  progress?: ProgressSink | undefined;
  signal?: AbortSignal | undefined;
  catalog?: Catalog | undefined;
}

/** Refuse to start an operation whose signal already fired: CANCELLED, nothing done. */
export function throwIfAborted(signal: AbortSignal | undefined, doing = "the operation"): void {
  throwIfCancelled(signal, doing);
}

/**
 * A pipeline's progress callback that sends `progress` events to `sink`, each with its rate:
 * bytes per second since its phase began (publish and done: the phase before), by the operation's clock (so a test's clock gives a
 * test's rate). Undefined when there is no sink: the pipeline then skips building events.
 */
export function progressTo(sink: ProgressSink | undefined, clock: Clock): ProgressCallback | undefined {
  if (!sink) return undefined;
  let phase: Progress["phase"] | undefined;
  let since = 0;
  return (p) => {
    const now = clock.now().getTime();
    // Publish and done carry the bytes of the phase before: their rate is that phase's.
    if (p.phase !== phase && (phase === undefined || (p.phase !== "publish" && p.phase !== "done"))) {
      phase = p.phase;
      since = now;
    }
    const seconds = (now - since) / 1000;
    sink({ kind: "progress", progress: { ...p, rate: seconds > 0 ? p.bytes / seconds : 0 } });
  };
}
