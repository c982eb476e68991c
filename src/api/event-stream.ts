import type { ServerResponse } from "node:http";
import type { ConfigEvent } from "../daemon/service.ts";
import type { RegistryEvent } from "../ops/runs.ts";
import { endedBody, runningBody } from "./schemas/runs.ts";

/** At most this many progress events a second per run, per client (the last one always comes). */
export const PROGRESS_PER_SECOND = 10;
/** A comment this often keeps proxies and browsers from closing a quiet stream. */
export const KEEP_ALIVE_MS = 15_000;

const GAP_MS = 1000 / PROGRESS_PER_SECOND;

/** The headers of an event stream: never cached, never buffered by a proxy (nginx: X-Accel-Buffering). */
export const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  Connection: "keep-alive",
  "X-Accel-Buffering": "no",
} as const;

interface Pending {
  lastSent: number;
  data?: unknown;
  timer?: NodeJS.Timeout | undefined;
}

/**
 * One client's event stream (`GET /api/events`), fed by the run registry's watcher and the
 * daemon's config events: `run` (started, ended with its result or error), `progress` (throttled
 * per run: at most PROGRESS_PER_SECOND, the newest kept and sent when the gap has passed, and
 * before the run's end), `warning`, `config`. Writing never throws back into a run: a closed
 * client makes the stream stop, and a slow one skips progress (never a run's start or end).
 */
export class EventStream {
  readonly #res: ServerResponse;
  readonly #progress = new Map<string, Pending>();
  readonly #keepAlive: NodeJS.Timeout;
  #closed = false;
  #onClose: (() => void)[] = [];

  constructor(res: ServerResponse, keepAliveMs = KEEP_ALIVE_MS) {
    this.#res = res;
    res.writeHead(200, SSE_HEADERS);
    // The browser's reconnect delay, and a first line so a client knows the stream is open.
    this.#write("retry: 3000\n: connected\n\n");
    this.#keepAlive = setInterval(() => this.#write(": keep-alive\n\n"), keepAliveMs);
    this.#keepAlive.unref();
    res.on("close", () => this.close());
    res.on("error", () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Run `fn` when the stream closes (the client went away, or the server stops). */
  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#onClose.push(fn);
  }

  run(e: RegistryEvent): void {
    if (this.#closed) return;
    const id = e.info.id;
    if (e.type === "started") {
      this.#send("run", { type: "started", ...runningBody(e.info) });
    } else if (e.type === "ended") {
      const p = this.#progress.get(id);
      if (p) {
        clearTimeout(p.timer);
        if (p.data !== undefined) this.#send("progress", p.data);
        this.#progress.delete(id);
      }
      this.#send("run", { type: "ended", ...endedBody({ info: e.info, outcome: e.outcome }) });
    } else if (e.event.kind === "progress") {
      this.#throttled(id, { runId: id, progress: e.event.progress });
    } else if (e.event.kind === "warning") {
      this.#send("warning", { runId: id, set: e.info.set ?? null, warning: e.event.warning });
    }
  }

  config(e: ConfigEvent): void {
    this.#send("config", { why: e.why, ok: e.ok, ...(e.error === undefined ? {} : { error: e.error }) });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepAlive);
    for (const p of this.#progress.values()) clearTimeout(p.timer);
    this.#progress.clear();
    for (const fn of this.#onClose.splice(0)) {
      try {
        fn();
      } catch {}
    }
    if (!this.#res.writableEnded) this.#res.end();
  }

  #throttled(id: string, data: unknown): void {
    const now = performance.now();
    let p = this.#progress.get(id);
    if (p === undefined || now - p.lastSent >= GAP_MS) {
      if (p?.timer) clearTimeout(p.timer);
      p = { lastSent: now };
      this.#progress.set(id, p);
      // A client that does not keep up skips progress: the newest comes with the next one.
      if (!this.#res.writableNeedDrain) this.#send("progress", data);
      return;
    }
    p.data = data;
    if (p.timer === undefined) {
      const entry = p;
      entry.timer = setTimeout(
        () => {
          entry.timer = undefined;
          const d = entry.data;
          entry.data = undefined;
          entry.lastSent = performance.now();
          if (d !== undefined && !this.#res.writableNeedDrain) this.#send("progress", d);
        },
        Math.max(0, GAP_MS - (now - p.lastSent)),
      );
    }
  }

  #send(event: string, data: unknown): void {
    this.#write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #write(text: string): void {
    if (this.#closed || this.#res.destroyed || this.#res.writableEnded) return;
    try {
      this.#res.write(text);
    } catch {
      this.close();
    }
  }
}
