import { useEffect, useRef, useState } from "react";
import { ApiError, type Progress, type RunError, type RunState, routes } from "./api.ts";

/*
 * Live runs: the daemon's Server-Sent Events (GET /api/events) — `run` (started/ended), `progress`
 * (`{runId, progress}`), `warning`, `config` — through one EventSource shared by every screen. A
 * run being watched is also asked for (GET /api/runs/:id) every few seconds, so its end is seen
 * even when the stream was cut meanwhile (a proxy, a laptop asleep).
 */

export type LiveEvent =
  | { type: "progress"; runId: string; progress: Progress }
  | { type: "run"; runId: string; data: Record<string, unknown> }
  | { type: "warning"; runId: string; data: Record<string, unknown> }
  | { type: "config"; data: Record<string, unknown> };

type Listener = (e: LiveEvent) => void;
const listeners = new Set<Listener>();
const connection = new Set<(open: boolean) => void>();
let source: EventSource | null = null;

function parse(ev: MessageEvent): Record<string, unknown> {
  try {
    return JSON.parse(String(ev.data)) as Record<string, unknown>;
  } catch {
    return {};
  }
}

const runIdOf = (d: Record<string, unknown>): string =>
  String(
    d.runId ??
      (d.run as { id?: string } | undefined)?.id ??
      (d.info as { id?: string } | undefined)?.id ??
      d.id ??
      "",
  );

/**
 * The newest news of each run seen on the stream: a screen that learns a run's id after its first
 * events (the answer to "Back up now" can come after them) starts from there, not from nothing.
 */
const seen = new Map<string, Partial<WatchedRun>>();

function emit(e: LiveEvent): void {
  if (e.type === "progress" && e.runId !== "")
    seen.set(e.runId, { ...seen.get(e.runId), progress: e.progress });
  if (e.type === "run" && e.runId !== "" && isEnd(e.data))
    seen.set(e.runId, { ...seen.get(e.runId), ...fromRunState(e.data) });
  if (seen.size > 200) seen.delete(seen.keys().next().value as string);
  for (const l of listeners) l(e);
}

/** A `run` event telling the run's end (`{type: "ended", state: "ended", ok, result, error}`). */
const isEnd = (d: Record<string, unknown>) => d.type === "ended" || d.state === "ended";

/** Open the stream (once logged in); EventSource reconnects by itself after a cut. */
export function openEvents(): void {
  if (source !== null) return;
  source = new EventSource("/api/events", { withCredentials: true });
  source.onopen = () => {
    for (const c of connection) c(true);
  };
  source.onerror = () => {
    for (const c of connection) c(false);
  };
  source.addEventListener("progress", (ev) => {
    const d = parse(ev as MessageEvent);
    const progress = (d.progress ?? d) as Progress;
    emit({ type: "progress", runId: runIdOf(d), progress });
  });
  source.addEventListener("run", (ev) => {
    const d = parse(ev as MessageEvent);
    emit({ type: "run", runId: runIdOf(d), data: d });
  });
  source.addEventListener("warning", (ev) => {
    const d = parse(ev as MessageEvent);
    emit({ type: "warning", runId: runIdOf(d), data: d });
  });
  source.addEventListener("config", (ev) => emit({ type: "config", data: parse(ev as MessageEvent) }));
}

export function closeEvents(): void {
  source?.close();
  source = null;
}

export function useLiveEvents(listener: Listener): void {
  const ref = useRef(listener);
  ref.current = listener;
  useEffect(() => {
    const l: Listener = (e) => ref.current(e);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
}

/** Whether the event stream is connected (false while the daemon is away). */
export function useEventsConnected(): boolean | null {
  const [open, setOpen] = useState<boolean | null>(null);
  useEffect(() => {
    const c = (o: boolean) => setOpen(o);
    connection.add(c);
    return () => {
      connection.delete(c);
    };
  }, []);
  return open;
}

export interface WatchedRun {
  progress: Progress | null;
  ended: boolean;
  result?: Record<string, unknown> | undefined;
  error?: RunError | undefined;
  warnings: string[];
}

const POLL_MS = 2000;

/** Follow one run until it ends: its progress (live), warnings, and result or error. */
export function useRun(runId: string | null): WatchedRun {
  // Keyed by run: another run id starts from nothing.
  const [held, setHeld] = useState<WatchedRun & { id: string | null }>({ ...blank(runId), id: runId });
  const state = held.id === runId ? held : { ...blank(runId), id: runId };
  const update = (id: string, f: (s: WatchedRun) => Partial<WatchedRun>) =>
    setHeld((h) => {
      const cur = h.id === id ? h : { ...blank(id), id };
      return { ...cur, ...f(cur) };
    });
  useLiveEvents((e) => {
    if (runId === null || e.type === "config" || e.runId !== runId) return;
    if (e.type === "progress") update(runId, (s) => (s.ended ? {} : { progress: e.progress }));
    else if (e.type === "warning") {
      const w = (e.data.warning ?? e.data) as { path?: string; message?: string };
      update(runId, (s) => ({ warnings: [...s.warnings, `${w.path ?? ""}: ${w.message ?? ""}`] }));
    } else if (e.type === "run") {
      const d = e.data;
      // Only the end says so: a started event carries `result: null, error: null` too (the run
      // state's shape), and taking those for an end showed a restore "done" before it had begun.
      if (isEnd(d)) update(runId, () => fromRunState(d));
    }
  });
  useEffect(() => {
    if (runId === null) return;
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const r: RunState = await routes.run(runId);
        if (stop) return;
        const last = r.info.progress ?? null;
        setHeld((h) => {
          const s = h.id === runId ? h : { ...blank(runId), id: runId };
          return {
            ...s,
            ...(last !== null && !s.ended ? { progress: last } : {}),
            ...(r.ended ? { ended: true, result: r.result, error: r.error } : {}),
          };
        });
        if (r.ended) return;
      } catch (e) {
        // Gone: it ended and the daemon forgot it (its record is in the history).
        if (e instanceof ApiError && e.status === 404) {
          if (!stop) setHeld((h) => (h.id === runId && !h.ended ? { ...h, ended: true } : h));
          return;
        }
        // Unreachable for now (the banner says so): ask again.
      }
      if (!stop) timer = setTimeout(poll, POLL_MS);
    };
    timer = setTimeout(poll, 300);
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [runId]);
  return state;
}

const blank = (id: string | null): WatchedRun => ({
  progress: null,
  ended: false,
  warnings: [],
  ...(id === null ? {} : seen.get(id)),
});

function fromRunState(d: Record<string, unknown>): Partial<WatchedRun> {
  return {
    ended: true,
    result: (d.result ?? undefined) as Record<string, unknown> | undefined,
    error: (d.error ?? undefined) as RunError | undefined,
  };
}
