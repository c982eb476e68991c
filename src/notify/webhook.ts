import type { NotifyConfig } from "../config/schema.ts";
import type { NotifyEvent, RunStatus } from "../core/types.ts";

/** A set's `notify:`: `on` lists the events to post; default failure, missed and copy_failed (a success every night is noise). */
export type { NotifyConfig, NotifyEvent };

/** The JSON body posted to the webhook. */
export interface NotifyPayload {
  tool: "bsched";
  event: NotifyEvent;
  set: string;
  host: string;
  /** The schedule slot (ISO instant), null for a run not from a schedule. */
  planned: string | null;
  /** The run's status, or `catch-up` for a `missed` event whose slots run once now. */
  status: RunStatus | "catch-up";
  startedAt: string | null;
  finishedAt: string | null;
  backup: string | null;
  files: number;
  bytes: number;
  warnings: number;
  error: string | null;
  /** For `missed`: how many slots passed while the daemon was down. */
  missedSlots?: number;
  /**
   * For `copy_failed`: the destination the copy failed to, by its config name (its error is `error`);
   * for `drill_failed`: the destination the drill restored from (`local`: the set's own folder).
   */
  destination?: string;
}

export interface NotifyLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface NotifyOptions {
  attempts?: number;
  /** First retry delay; doubles each time. */
  baseDelayMs?: number;
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  log?: NotifyLog;
}

export const DEFAULT_EVENTS: NotifyEvent[] = ["failure", "missed", "copy_failed", "drill_failed"];

export function wants(cfg: NotifyConfig | undefined, event: NotifyEvent): cfg is NotifyConfig {
  return cfg !== undefined && (cfg.on ?? DEFAULT_EVENTS).includes(event);
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * POST the payload, retrying network errors, 429 and 5xx with exponential backoff. Never throws:
 * a webhook that is down must not fail a backup; it is logged and reported as false.
 */
export async function postWebhook(
  url: string,
  payload: NotifyPayload,
  opts: NotifyOptions = {},
): Promise<boolean> {
  const attempts = opts.attempts ?? 4;
  const base = opts.baseDelayMs ?? 1000;
  const sleep = opts.sleep ?? realSleep;
  let last = "";
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(base * 2 ** (i - 1));
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "bsched" },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        opts.log?.info({ event: payload.event, set: payload.set, attempt: i + 1 }, "notification sent");
        return true;
      }
      last = `HTTP ${res.status}`;
      if (res.status < 500 && res.status !== 429 && res.status !== 408) break;
    } catch (e) {
      last = (e as Error).message;
    }
  }
  opts.log?.warn(
    { event: payload.event, set: payload.set, webhook: redact(url), error: last },
    "could not send the notification; the run itself is not affected",
  );
  return false;
}

/** Webhook URLs often carry a token: log only the origin. */
function redact(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid url)";
  }
}
