import type { SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import type { NotifyEvent } from "../core/types.ts";
import type { Clock } from "../platform/clock.ts";
import { hostName } from "../platform/host.ts";
import { type EmailOptions, sendEmail, smtpServer } from "./email.ts";
import { composeMessage } from "./message.ts";
import { throttle } from "./repeats.ts";
import { type NotifyLog, type NotifyOptions, type NotifyPayload, postWebhook, wants } from "./webhook.ts";

export type { DiskUsage, DrillCheck, NotifyPayload } from "./webhook.ts";

/**
 * The one notifier seam (docs/design.md "Notifications"): an event of a set goes through the
 * repeat counter (src/notify/repeats.ts) once, then to each channel the set has — its webhook
 * (JSON) and its email (one message per event). Every caller (a backup, a copy, the scheduler's
 * missed slots, a restore drill) calls a Notifier; none knows the channels.
 */
export type Notifier = (set: SetConfig, payload: NotifyPayload) => Promise<NotifyOutcome>;

export interface NotifyOutcome {
  /** false: `notify.on` does not ask for it, or it was counted as a repeat. */
  sent: boolean;
  /** One line per channel that failed, naming it and the fix (never a secret): for a warning. */
  errors: string[];
}

export interface NotifierOptions {
  /** The state folder: the repeat counts and the secret store. */
  state: string;
  clock: Clock;
  /** `server.notify.repeatWindow` in ms (a function: the daemon's config may be reloaded). */
  repeatWindowMs?: number | (() => number | undefined) | undefined;
  log?: NotifyLog | undefined;
  webhook?: NotifyOptions | undefined;
  email?: EmailOptions | undefined;
}

export const DEFAULT_REPEAT_WINDOW_MS = 6 * 3_600_000;

/** A payload's common fields filled in (tool, host, nothing done): callers give what they know. */
export function payloadOf(
  set: string,
  p: Partial<NotifyPayload> & Pick<NotifyPayload, "event" | "status">,
): NotifyPayload {
  return {
    tool: "bsched",
    set,
    host: hostName(),
    planned: null,
    startedAt: null,
    finishedAt: null,
    backup: null,
    files: 0,
    bytes: 0,
    warnings: 0,
    error: null,
    ...p,
  };
}

/**
 * A Notifier. It never throws: a channel that fails is logged (`log.warn`, naming the server or
 * the webhook's origin and the fix) and returned in `errors`; the run that notified is not
 * affected.
 */
/** The notifier of a config: repeats counted in its state folder, over its `server.notify.repeatWindow`. */
export function configNotifier(
  config: { state: string; notify?: { repeatWindowMs?: number | undefined } | undefined },
  clock: Clock,
): Notifier {
  return makeNotifier({ state: config.state, clock, repeatWindowMs: config.notify?.repeatWindowMs });
}

export function makeNotifier(opts: NotifierOptions): Notifier {
  return async (set, payload) => {
    const out: NotifyOutcome = { sent: false, errors: [] };
    const cfg = set.notify;
    // A success not asked for still ends the set's series of failures (src/notify/repeats.ts).
    if (cfg === undefined || (!wants(cfg, payload.event) && payload.event !== "success")) return out;
    const windowMs =
      (typeof opts.repeatWindowMs === "function" ? opts.repeatWindowMs() : opts.repeatWindowMs) ??
      DEFAULT_REPEAT_WINDOW_MS;
    let p = payload;
    try {
      const t = await throttle(opts.state, payload, opts.clock.now(), windowMs);
      if (!t.send) {
        opts.log?.info({ event: p.event, set: p.set }, "notification counted as a repeat, not sent");
        return out;
      }
      p = t.payload;
    } catch (e) {
      // A state folder that cannot be written must not silence a failure: send it uncounted.
      opts.log?.warn({ state: opts.state, err: (e as Error).message }, "could not count the notification");
    }
    if (!wants(cfg, p.event)) return out;
    const sends: Promise<void>[] = [];
    if (cfg.webhook !== undefined) {
      const url = cfg.webhook;
      sends.push(
        postWebhook(url, p, { ...opts.webhook, log: opts.log }).then((ok) => {
          if (!ok) out.errors.push(`could not send the ${p.event} notification to ${originOf(url)}`);
        }),
      );
    }
    if (cfg.email !== undefined) {
      const email = cfg.email;
      sends.push(
        sendEmail(email, opts.state, composeMessage(p, { repeatWindowMs: windowMs }), opts.email).then(
          () => opts.log?.info({ event: p.event, set: p.set, smtp: smtpServer(email) }, "email sent"),
          (e) => {
            const line = emailFailure(p.event, email, e);
            out.errors.push(line);
            opts.log?.warn(
              { event: p.event, set: p.set, smtp: smtpServer(email), code: (e as BschedError).code },
              `${line}; the run itself is not affected`,
            );
          },
        ),
      );
    }
    await Promise.all(sends);
    out.sent = out.errors.length < sends.length;
    return out;
  };
}

/** `could not send the failure email through SMTP server H:P: … [CODE]; hint`: one line, no secret. */
export function emailFailure(
  event: NotifyEvent | "test" | "digest",
  email: { host: string; port?: number | undefined },
  e: unknown,
): string {
  const server = smtpServer(email as Parameters<typeof smtpServer>[0]);
  if (e instanceof BschedError)
    return `could not send the ${event} email through the SMTP server ${server}: ${e.message} [${e.code}]${e.hint ? `; ${e.hint}` : ""}`;
  return `could not send the ${event} email through the SMTP server ${server}: ${(e as Error)?.message ?? String(e)}`;
}

/** Webhook URLs often carry a token in their path: only the origin is shown. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid url)";
  }
}
