import { randomUUID } from "node:crypto";
import { BschedError } from "../core/errors.ts";
import type { Clock } from "../platform/clock.ts";
import { fromOsError } from "../platform/os-errors.ts";
import type { OpEvent, ProgressSink } from "./context.ts";

export type RunKind = "backup" | "restore" | "verify" | "prune" | "copy" | "drill";

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

/** How a run ended: its result, or its error as the CLI words it (code, message, hint). */
export type RunOutcome =
  | { ok: true; endedAt: string; result: unknown }
  | { ok: false; endedAt: string; error: { code: string; message: string; hint: string | null } };

/** An ended run, kept for a while (`RunRegistry.ended`): what it was and how it ended. */
export interface EndedRun {
  info: RunInfo;
  outcome: RunOutcome;
}

/**
 * What a watcher of the whole registry sees (`RunRegistry.watch`): each run starting, each of its
 * events, and its end. The web window's event stream is one such watcher.
 */
export type RegistryEvent =
  | { type: "started"; info: RunInfo }
  | { type: "event"; info: RunInfo; event: OpEvent }
  | { type: "ended"; info: RunInfo; outcome: RunOutcome };

/** How many ended runs the registry remembers (`ended(id)`): enough for a window to catch up. */
export const ENDED_KEPT = 50;

/** What a run's body gets: the sink to report to and the signal to honour. */
export interface RunScope {
  id: string;
  progress: ProgressSink;
  signal: AbortSignal;
}

/**
 * The runs of this process (the CLI's one, or the daemon's many): each has an id, an event stream
 * and a result, and can be cancelled. Only what is running is listed; a run leaves the registry
 * when it ends (the catalog keeps its record). The last ENDED_KEPT ended runs' outcomes stay in
 * memory (`ended`), and `watch` sees every run of the registry, from start to end.
 */
export class RunRegistry {
  readonly #runs = new Map<string, RunHandle<unknown>>();
  readonly #ended = new Map<string, EndedRun>();
  readonly #watchers = new Set<(e: RegistryEvent) => void>();
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
      this.#tell({ type: "event", info, event });
    };
    // The body starts on the next tick: the run is registered before any of its code runs.
    const result = Promise.resolve()
      .then(() => body({ id, progress, signal: abort.signal }))
      .finally(() => {
        opts.signal?.removeEventListener("abort", onOuter);
        this.#runs.delete(id);
        listeners.clear();
      });
    // The outcome is kept and told to watchers; this also handles the rejection, so a run nobody
    // awaits (one started through the API) never becomes an unhandled rejection.
    result.then(
      (r) => this.#end(info, { ok: true, endedAt: this.#clock.now().toISOString(), result: r }),
      (e: unknown) =>
        this.#end(info, { ok: false, endedAt: this.#clock.now().toISOString(), error: wordError(e) }),
    );
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
    this.#tell({ type: "started", info });
    return handle;
  }

  /**
   * Watch every run of this registry: starts, events and ends (with the outcome), from now on.
   * A watcher that throws is ignored, as a subscriber is. Returns the function that stops watching.
   */
  watch(watcher: (e: RegistryEvent) => void): () => void {
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  /** An ended run among the last ENDED_KEPT: its info and outcome; undefined when unknown or running. */
  ended(id: string): EndedRun | undefined {
    return this.#ended.get(id);
  }

  #end(info: RunInfo, outcome: RunOutcome): void {
    this.#ended.set(info.id, { info, outcome });
    for (const old of this.#ended.keys()) {
      if (this.#ended.size <= ENDED_KEPT) break;
      this.#ended.delete(old);
    }
    this.#tell({ type: "ended", info, outcome });
  }

  #tell(e: RegistryEvent): void {
    for (const w of this.#watchers) {
      try {
        w(e);
      } catch {
        // A watcher's failure (a closed event stream) never disturbs a run.
      }
    }
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

/** An error as a run's outcome: a BschedError's code, message and hint; anything else INTERNAL. */
function wordError(thrown: unknown): { code: string; message: string; hint: string | null } {
  // A system error that got this far still gets a bsched code, as the CLI's reportError gives it.
  const e = fromOsError(thrown);
  if (e instanceof BschedError) return { code: e.code, message: e.message, hint: e.hint ?? null };
  return {
    code: "INTERNAL",
    message: e instanceof Error ? e.message : String(e),
    hint: "an unexpected failure: run again with BSCHED_DEBUG=1 to see where, and report it",
  };
}
