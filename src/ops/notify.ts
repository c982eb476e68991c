import type { Catalog } from "../catalog/catalog.ts";
import { openCatalog } from "../catalog/reconcile.ts";
import { getSet } from "../config/load.ts";
import type { NotifyConfig } from "../config/schema.ts";
import { BschedError } from "../core/errors.ts";
import type { NotifyEvent } from "../core/types.ts";
import { composeDigest, digestOf } from "../notify/digest.ts";
import { type EmailMessage, type EmailOptions, sendEmail, smtpServer } from "../notify/email.ts";
import { esc } from "../notify/message.ts";
import { emailFailure, originOf, payloadOf } from "../notify/notify.ts";
import { updateNotifyState } from "../notify/repeats.ts";
import { type NotifyOptions, postWebhook } from "../notify/webhook.ts";
import { hostName } from "../platform/host.ts";
import type { OpContext } from "./context.ts";

/** How one channel took the test message. */
export interface ChannelResult {
  channel: "email" | "webhook";
  /** `smtp.example:587 → ops@example.com, …`, or the webhook's origin (never its path: a token). */
  target: string;
  ok: boolean;
  error?: string;
}

export interface NotifyTestOptions {
  /** The set whose notifications are tried (its own over server.notify); default server.notify alone. */
  set?: string | undefined;
  email?: EmailOptions | undefined;
  webhook?: NotifyOptions | undefined;
}

/**
 * `bsched notify test`: one test message to every channel (email, webhook) of the set or of
 * `server.notify`, unthrottled. Returns each channel's result; throws NOTIFY_FAILED (exit 1)
 * naming each channel that failed and its fix, after trying them all.
 */
export async function notifyTest(ctx: OpContext, opts: NotifyTestOptions = {}): Promise<ChannelResult[]> {
  const { config } = ctx;
  const set = opts.set === undefined ? undefined : getSet(config, opts.set);
  const cfg: NotifyConfig | undefined = set ? set.notify : config.notify;
  if (cfg === undefined || (cfg.email === undefined && cfg.webhook === undefined)) {
    throw new BschedError(
      "USAGE",
      `no notification is configured ${set ? `for set ${set.id}` : "in server.notify"} in ${config.file}`,
      {
        hint: 'add server.notify.email { host, security, user, password: secret:smtp, from, to } (README "Notifications"), or a set\'s notify.webhook',
        exitCode: 2,
      },
    );
  }
  const host = hostName();
  const now = ctx.clock.now().toISOString();
  const results: ChannelResult[] = [];
  if (cfg.email !== undefined) {
    const email = cfg.email;
    const target = `${smtpServer(email)} → ${email.to.join(", ")}`;
    try {
      await sendEmail(email, config.state, testMessage(host, set?.id, now, target), opts.email);
      results.push({ channel: "email", target, ok: true });
    } catch (e) {
      results.push({ channel: "email", target, ok: false, error: emailFailure("test", email, e) });
    }
  }
  if (cfg.webhook !== undefined) {
    const target = originOf(cfg.webhook);
    // `test`: not one of `notify.on`'s events; a receiver can tell it from a real one.
    const payload = payloadOf(set?.id ?? "", { event: "test" as NotifyEvent, status: "ok", finishedAt: now });
    const ok = await postWebhook(cfg.webhook, payload, { attempts: 1, ...opts.webhook });
    results.push({
      channel: "webhook",
      target,
      ok,
      ...(ok
        ? {}
        : {
            error: `could not post the test notification to ${target} (the daemon's log or the receiver says why)`,
          }),
    });
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    const first = failed[0] as ChannelResult;
    throw new BschedError("NOTIFY_FAILED", failed.map((r) => r.error).join("\n"), {
      hint:
        first.channel === "email"
          ? "fix what the message names, then run `bsched notify test` again"
          : "check the webhook's URL and that its receiver answers 2xx, then run `bsched notify test` again",
    });
  }
  return results;
}

function testMessage(host: string, set: string | undefined, at: string, target: string): EmailMessage {
  const what = set ? `set ${set}'s notifications` : "notifications";
  const text = `This is a test of bsched's ${what} on ${host}, sent at ${at} through ${target}.\n\nIf you read this, failures, missed runs, failed copies and failed drills will reach you here.\n\n-- bsched\n`;
  return {
    subject: `[bsched] ${host}: test message`,
    text,
    html: `<!doctype html><html><body><p>This is a test of bsched's ${esc(what)} on ${esc(host)}, sent at ${esc(at)} through ${esc(target)}.</p><p>If you read this, failures, missed runs, failed copies and failed drills will reach you here.</p><p>-- bsched</p></body></html>`,
  };
}

export interface DigestResult {
  /** false with `print`: composed, not sent. */
  sent: boolean;
  to: string[];
  since: string;
  message: EmailMessage;
}

/**
 * The weekly digest now (`bsched notify digest`, and the daemon at `server.notify.digest`'s
 * time): each set's week from the catalog, mailed to `server.notify.email`, and the time recorded
 * in the state folder so a restarted daemon does not send it twice. `print`: composed only.
 */
export async function sendDigest(
  ctx: OpContext,
  opts: { print?: boolean | undefined; email?: EmailOptions | undefined } = {},
): Promise<DigestResult> {
  const { config } = ctx;
  const email = config.notify?.email;
  if (email === undefined && !opts.print) {
    throw new BschedError(
      "USAGE",
      `the digest goes to server.notify.email, which ${config.file} does not set`,
      {
        hint: 'add server.notify.email { host, from, to, … } (README "Notifications"), or print it with --print',
        exitCode: 2,
      },
    );
  }
  const now = ctx.clock.now();
  const since = new Date(now.getTime() - 7 * 86_400_000);
  const catalog: Catalog = ctx.catalog ?? openCatalog(config);
  let message: EmailMessage;
  try {
    message = composeDigest(hostName(), digestOf(config, catalog, since), since, now);
  } finally {
    if (ctx.catalog === undefined) catalog.close();
  }
  if (opts.print || email === undefined)
    return { sent: false, to: email?.to ?? [], since: since.toISOString(), message };
  try {
    await sendEmail(email, config.state, message, opts.email);
  } catch (e) {
    throw new BschedError("NOTIFY_FAILED", emailFailure("digest", email, e), {
      hint: "fix what the message names, then `bsched notify test`",
    });
  }
  await updateNotifyState(config.state, (s) => {
    s.digestAt = now.toISOString();
  });
  return { sent: true, to: email.to, since: since.toISOString(), message };
}
