import type { Catalog } from "../catalog/catalog.ts";
import type { Config } from "../config/load.ts";
import type { Progress, Warning } from "../core/types.ts";
import type { Clock } from "../platform/clock.ts";

/**
 * What an operation tells whoever runs it while it runs: the CLI's progress bar and stderr lines,
 * the daemon's log, a test's recorder. Events only inform: an operation's outcome is its result
 * (or a BschedError), never something a sink must have seen.
 */
export type OpEvent =
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
 * The signal is accepted and passed on; the pipelines (backup, restore, verify) do not yet stop
 * part-way when it fires: an operation checks it before it starts.
 */
export interface OpContext {
  config: Config;
  clock: Clock;
  progress?: ProgressSink | undefined;
  signal?: AbortSignal | undefined;
  catalog?: Catalog | undefined;
}

/** Refuse to start an operation whose signal already fired (the pipelines do not honour it mid-way yet). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}
