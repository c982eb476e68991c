import { readFileSync } from "node:fs";
import nodemailer from "nodemailer";
import type { EmailConfig, EmailSecurity } from "../config/schema.ts";
import { BschedError } from "../core/errors.ts";
import { resolveSecret } from "../secrets/secrets.ts";

/** One message, as src/notify/message.ts composes it. */
export interface EmailMessage {
  subject: string;
  text: string;
  html: string;
}

export interface EmailOptions {
  /** Connection, greeting and each command (default 20 s): a server that hangs must not hold a run forever. */
  timeoutMs?: number | undefined;
  /** Tries for a server that cannot be reached (default 3); a refused login is never retried. */
  attempts?: number | undefined;
  /** First retry delay (default 2 s), doubled each time. */
  baseDelayMs?: number | undefined;
  sleep?: ((ms: number) => Promise<void>) | undefined;
  /** Where the secrets are read (the state folder) and their keys' sources (tests). */
  env?: NodeJS.ProcessEnv | undefined;
}

/** The port each security uses when `port` is not given: 587 submission, 465 submissions, 25. */
export function defaultPort(security: EmailSecurity): number {
  return security === "tls" ? 465 : security === "none" ? 25 : 587;
}

/** `host:port` as messages name the server (never the login). */
export function smtpServer(e: EmailConfig): string {
  const security = e.security ?? "starttls";
  return `${e.host}:${e.port ?? defaultPort(security)}`;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Send one message through the configured SMTP server. The password is read from the secret
 * store here, at each send (a secret changed while the daemon runs is used at once), goes to
 * nodemailer only, and is never in what this throws: a BschedError naming the server and the fix.
 */
export async function sendEmail(
  email: EmailConfig,
  state: string,
  message: EmailMessage,
  opts: EmailOptions = {},
): Promise<void> {
  const security = email.security ?? "starttls";
  const password =
    email.password === undefined
      ? undefined
      : resolveSecret(email.password, state, "notify.email.password", opts.env);
  const timeout = opts.timeoutMs ?? 20_000;
  let ca: Buffer | undefined;
  if (email.ca !== undefined) {
    try {
      ca = readFileSync(email.ca);
    } catch (e) {
      throw new BschedError(
        "NOTIFY_FAILED",
        `notify.email.ca: cannot read ${email.ca}: ${(e as Error).message}`,
        {
          hint: "give a readable PEM file of the CA that signed the SMTP server's certificate",
        },
      );
    }
  }
  const attempts = opts.attempts ?? 3;
  const sleep = opts.sleep ?? realSleep;
  for (let i = 0; ; i++) {
    const transport = nodemailer.createTransport({
      host: email.host,
      port: email.port ?? defaultPort(security),
      secure: security === "tls",
      requireTLS: security === "starttls",
      ignoreTLS: security === "none",
      ...(email.user === undefined ? {} : { auth: { user: email.user, pass: password ?? "" } }),
      ...(ca === undefined ? {} : { tls: { ca } }),
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
      logger: false,
      debug: false,
    });
    try {
      await transport.sendMail({
        from: email.from,
        to: email.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
      });
      return;
    } catch (e) {
      const err = smtpError(email, e, password);
      if (err.code !== "UNREACHABLE" || i + 1 >= attempts) throw err;
      await sleep((opts.baseDelayMs ?? 2000) * 2 ** i);
    } finally {
      transport.close();
    }
  }
}

/** nodemailer's error as bsched's: the server, what went wrong, the fix; the password scrubbed. */
export function smtpError(email: EmailConfig, e: unknown, password?: string): BschedError {
  const server = smtpServer(email);
  const code = (e as { code?: string }).code ?? "";
  let raw = (e as Error)?.message ?? String(e);
  if (password) raw = raw.split(password).join("********");
  const test = "then check with `bsched notify test`";
  if (code === "EAUTH" || code === "ENOAUTH")
    return new BschedError(
      "AUTH_FAILED",
      `the SMTP server ${server} refused the login${email.user ? ` of user ${email.user}` : ""}: ${raw}`,
      {
        hint: `check notify.email.user and the password's secret (\`bsched secret set NAME\` for the secret:NAME in notify.email.password); ${test}`,
        cause: e,
      },
    );
  if (code === "ETLS" || /certificate|self[- ]signed|CERT_|TLS/i.test(raw))
    return new BschedError("NOTIFY_FAILED", `TLS with the SMTP server ${server} failed: ${raw}`, {
      hint: /certificate|self[- ]signed|CERT_/i.test(raw)
        ? `the server's certificate is not trusted: give the CA that signed it in notify.email.ca (a PEM file), or fix the server's certificate; ${test}`
        : `the server may not offer STARTTLS on this port: use security tls (port 465) or security starttls (port 587) as the server expects; ${test}`,
      cause: e,
    });
  if (["ECONNECTION", "ETIMEDOUT", "ESOCKET", "EDNS", "ECONNREFUSED", "ENOTFOUND"].includes(code))
    return new BschedError("UNREACHABLE", `cannot reach the SMTP server ${server}: ${raw}`, {
      hint: `check notify.email.host and port (587 for starttls, 465 for tls) and that the server runs and accepts connections from this machine; ${test}`,
      cause: e,
    });
  if (code === "EENVELOPE")
    return new BschedError(
      "NOTIFY_FAILED",
      `the SMTP server ${server} refused the sender or recipients: ${raw}`,
      {
        hint: `check notify.email.from and notify.email.to (the server may only accept its own domain as sender); ${test}`,
        cause: e,
      },
    );
  return new BschedError("NOTIFY_FAILED", `sending email through the SMTP server ${server} failed: ${raw}`, {
    hint: `the server's answer above says why; ${test}`,
    cause: e,
  });
}
