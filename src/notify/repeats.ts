import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { errnoCode } from "../core/errors.ts";
import { fsyncDir, tempName } from "../platform/fsutil.ts";
import { NOTIFY_STATE } from "../platform/names.ts";
import type { NotifyPayload } from "./webhook.ts";

/**
 * No flood: the same failure again (same set, event, code, destination) within the repeat window
 * of the last message about it is counted instead of sent; the next one sent after the window says
 * "5 times since …". The counts live in `<state>/notify.json`, so a daemon restart (or a manual
 * `bsched backup` between two scheduled runs) does not forget them. A successful backup of the
 * set ends its series of `failure`s.
 */
export const NOTIFY_STATE_FILE = NOTIFY_STATE;

/** One series of the same event. */
export interface Series {
  /** The first occurrence of the series (ISO). */
  since: string;
  /** Occurrences in the series, the latest included. */
  count: number;
  /** When the last message about it was sent (ISO). */
  sentAt: string;
  /** Occurrences since `sentAt` that were counted, not sent. */
  unsent: number;
}

export interface NotifyState {
  version: 1;
  series: Record<string, Series>;
  /** When the last weekly digest was sent (ISO): a restarted daemon does not send it twice. */
  digestAt?: string;
}

/** The events a series is kept for: what repeats when something stays broken. */
const REPEATING = new Set(["failure", "missed", "copy_failed", "drill_failed", "disk_low"]);

export function seriesKey(p: NotifyPayload): string | undefined {
  if (!REPEATING.has(p.event)) return undefined;
  const what = p.event === "disk_low" ? (p.disk?.path ?? "") : (p.code ?? "");
  return [p.set, p.event, what, p.destination ?? ""].join("\u0000");
}

export interface Decision {
  send: boolean;
  next: Series;
}

/** Pure: whether this occurrence is sent, and the series after it. */
export function decide(prev: Series | undefined, now: Date, windowMs: number): Decision {
  const at = now.toISOString();
  const count = (prev?.count ?? 0) + 1;
  const since = prev?.since ?? at;
  const send = prev === undefined || now.getTime() - Date.parse(prev.sentAt) >= windowMs;
  return send
    ? { send, next: { since, count, sentAt: at, unsent: 0 } }
    : { send, next: { since, count, sentAt: prev.sentAt, unsent: prev.unsent + 1 } };
}

export function readNotifyState(state: string): NotifyState {
  try {
    const j = JSON.parse(readFileSync(path.join(state, NOTIFY_STATE_FILE), "utf8")) as NotifyState;
    if (j?.version === 1 && typeof j.series === "object" && j.series !== null) return j;
  } catch (e) {
    // Missing: nothing sent yet. Damaged: start again (at worst one message more, never one less).
    if (errnoCode(e) !== "ENOENT" && !(e instanceof SyntaxError)) throw e;
  }
  return { version: 1, series: {} };
}

/**
 * Temporary name, fsync, rename — but never creating the state folder: a state folder that is
 * gone (removed while a notification was in flight) is not brought back by a count.
 */
export async function writeNotifyState(state: string, s: NotifyState): Promise<void> {
  const file = path.join(state, NOTIFY_STATE_FILE);
  const tmp = path.join(state, tempName(NOTIFY_STATE_FILE));
  const fh = await fs.open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(s, null, 1)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(state);
}

/** One change of the state file at a time in this process (the daemon notifies in the background). */
const queues = new Map<string, Promise<unknown>>();

export function updateNotifyState<T>(state: string, fn: (s: NotifyState) => T): Promise<T> {
  const prev = queues.get(state) ?? Promise.resolve();
  const run = prev
    .catch(() => undefined)
    .then(async () => {
      const s = readNotifyState(state);
      const r = fn(s);
      await writeNotifyState(state, s);
      return r;
    });
  queues.set(state, run);
  // Forget the queue once idle; the caller handles `run`'s failure (a `finally` here would be a
  // second, unhandled rejection).
  const forget = () => {
    if (queues.get(state) === run) queues.delete(state);
  };
  run.then(forget, forget);
  return run;
}

/**
 * Count `p` in its series and say whether to send it; a sent repeat carries `repeats` and `since`.
 * A `success` ends the set's series of failures (and is itself sent or not by `notify.on`).
 */
export async function throttle(
  state: string,
  p: NotifyPayload,
  now: Date,
  windowMs: number,
): Promise<{ send: boolean; payload: NotifyPayload }> {
  const key = seriesKey(p);
  if (key === undefined) {
    if (p.event === "success") {
      const prefix = `${p.set}\u0000failure\u0000`;
      await updateNotifyState(state, (s) => {
        for (const k of Object.keys(s.series)) if (k.startsWith(prefix)) delete s.series[k];
      });
    }
    return { send: true, payload: p };
  }
  const d = await updateNotifyState(state, (s) => {
    const r = decide(s.series[key], now, windowMs);
    s.series[key] = r.next;
    return r;
  });
  return {
    send: d.send,
    payload: d.next.count > 1 ? { ...p, repeats: d.next.count, since: d.next.since } : p,
  };
}
