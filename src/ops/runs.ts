import { randomUUID } from "node:crypto";
import type { Clock } from "../platform/clock.ts";
import type { OpEvent, ProgressSink } from "./context.ts";

export type RunKind = "backup" | "restore" | "verify" | "prune" | "copy";

/** What a run registry says about a run, running or just ended (the web window lists these). */
export interface RunInfo {
  /** Unique in this process, stable for the run's life: what cancel and the event stream use. */
  id: string;
  kind: RunKind;
  set?: string | undefined;
  trigger: "manual" | "schedule" | "api";
  startedAt: string;
  /** The newest progress event, for a subscriber that joins late. */
  last?: OpEvent | undefined;
}

/** One run: its events while it runs, and its result (or error) once done. */
export interface RunHandle<T> {
  readonly info: RunInfo;
  readonly result: Promise<T>;
  /** Listen to its events from now on; returns the function that stops listening. */
  subscribe(listener: ProgressSink): () => void;
  /** Ask it to stop: its pipeline stops promptly, leaving exactly what a crash would. */
  cancel(reason?: string): void;
}

/** What a run's body gets: the sink to report to and the signal to honour. */
export interface RunScope {
  id: string;
  progress: ProgressSink;
  signal: AbortSignal;
}

/**
 * The runs of this process (the CLI's one, or the daemon's many): each has an id, an event stream
 * and a result, and can be cancelled. Only what is running is listed; a run leaves the registry
 * when it ends (the catalog keeps its record).
 */
export class RunRegistry {
  readonly #runs = new Map<string, RunHandle<unknown>>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * Start `body` as a run. `signal` (optional) also cancels it, as does `cancel(id)`; the body's
   * events go to every subscriber (and to `progress` given here, subscribed before the first event).
   */
  start<T>(
    what: { kind: RunKind; set?: string | undefined; trigger?: RunInfo["trigger"] },
    body: (scope: RunScope) => Promise<T>,
    opts: { signal?: AbortSignal | undefined; progress?: ProgressSink | undefined } = {},
  ): RunHandle<T> {
    const id = randomUUID();
    const info: RunInfo = {
      id,
      kind: what.kind,
      set: what.set,
      trigger: what.trigger ?? "manual",
      startedAt: this.#clock.now().toISOString(),
    };
    const listeners = new Set<ProgressSink>();
    if (opts.progress) listeners.add(opts.progress);
    const abort = new AbortController();
    const onOuter = () => abort.abort(opts.signal?.reason);
    if (opts.signal?.aborted) onOuter();
    else opts.signal?.addEventListener("abort", onOuter, { once: true });
    const progress: ProgressSink = (event) => {
      if (event.kind === "progress") info.last = event;
      for (const l of listeners) {
        try {
          l(event);
        } catch {
          // A subscriber's failure (a closed browser tab) never stops the run.
        }
      }
    };
    // The body starts on the next tick: the run is registered before any of its code runs.
    const result = Promise.resolve()
      .then(() => body({ id, progress, signal: abort.signal }))
      .finally(() => {
        opts.signal?.removeEventListener("abort", onOuter);
        this.#runs.delete(id);
        listeners.clear();
      });
    const handle: RunHandle<T> = {
      info,
      result,
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      cancel(reason = "cancelled") {
        abort.abort(new Error(reason));
      },
    };
    this.#runs.set(id, handle as RunHandle<unknown>);
    return handle;
  }

  /** What is running now, oldest first. */
  list(): RunInfo[] {
    return [...this.#runs.values()].map((r) => r.info);
  }

  get(id: string): RunHandle<unknown> | undefined {
    return this.#runs.get(id);
  }

  /** Cancel a running run; false when no run has this id (it ended, or never was). */
  cancel(id: string, reason?: string): boolean {
    const run = this.#runs.get(id);
    run?.cancel(reason);
    return run !== undefined;
  }
}
