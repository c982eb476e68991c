import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { SMTPServer } from "smtp-server";
import { tempDir } from "./cli.ts";
import { missingPrograms } from "./servers/need.ts";

/** One message as the server received it, decoded enough to assert on. */
export interface Received {
  from: string;
  to: string[];
  /** The login used (undefined: none), and whether the session had been upgraded to TLS. */
  user: string | undefined;
  secure: boolean;
  subject: string;
  text: string;
  html: string;
  raw: string;
}

export interface TestSmtp {
  port: number;
  /** The throw-away self-signed certificate (PEM file): the config's `notify.email.ca`. */
  ca: string;
  messages: Received[];
  /** Logins refused (user names): a wrong password shows here. */
  refused: string[];
  /** Resolves when `n` messages have arrived (generous timeout: a loaded machine). */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/**
 * A real SMTP server (the `smtp-server` package) on 127.0.0.1: STARTTLS with a certificate made
 * here by openssl (CN and subjectAltName localhost / 127.0.0.1), a login required after the
 * upgrade (no AUTH in clear), one user and password. Skips (or fails under
 * BSCHED_TEST_SERVERS=required) when openssl is missing, naming the Debian package.
 */
export async function startSmtp(opts: {
  user: string;
  password: string;
  /** TLS from the first byte (`security: tls`) instead of STARTTLS. */
  secure?: boolean;
  after: (fn: () => Promise<void>) => void;
}): Promise<TestSmtp> {
  const dir = await tempDir("bsched-smtp-");
  opts.after(() => fs.rm(dir, { recursive: true, force: true }));
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  const messages: Received[] = [];
  const refused: string[] = [];
  const server = new SMTPServer({
    key: await fs.readFile(key),
    cert: await fs.readFile(cert),
    secure: opts.secure === true,
    allowInsecureAuth: false,
    authMethods: ["PLAIN", "LOGIN"],
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === opts.user && auth.password === opts.password)
        return cb(null, { user: auth.username });
      refused.push(auth.username ?? "");
      return cb(new Error("Invalid username or password"));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (d: Buffer) => chunks.push(d));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        messages.push({
          ...decode(raw),
          raw,
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          user: typeof session.user === "string" ? session.user : undefined,
          secure: session.secure,
        });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= new Promise<void>((r) => server.close(() => r()));
    return closed;
  };
  opts.after(close);
  return {
    port,
    ca: cert,
    messages,
    refused,
    async waitFor(n, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      while (messages.length < n) {
        if (Date.now() > until) throw new Error(`${messages.length} message(s) arrived, waited for ${n}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return messages;
    },
    close,
  };
}

/** Subject, text and HTML parts of a MIME message as nodemailer writes it (QP or base64 parts). */
function decode(raw: string): { subject: string; text: string; html: string } {
  const [head = "", ...rest] = raw.split(/\r?\n\r?\n/);
  const body = rest.join("\n\n");
  const headers = head.replace(/\r?\n[ \t]+/g, " ");
  const subject = words(/^Subject: (.*)$/im.exec(headers)?.[1] ?? "");
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(headers)?.[1];
  const parts = boundary ? body.split(`--${boundary}`) : [`${head}\n\n${body}`];
  let text = "";
  let html = "";
  for (const p of parts) {
    const [ph = "", ...pb] = p.replace(/^\r?\n/, "").split(/\r?\n\r?\n/);
    const content = pb.join("\n\n");
    const enc = /Content-Transfer-Encoding: *(\S+)/i.exec(ph)?.[1]?.toLowerCase();
    const decoded =
      enc === "quoted-printable"
        ? qp(content)
        : enc === "base64"
          ? Buffer.from(content.replace(/\s+/g, ""), "base64").toString("utf8")
          : content;
    if (/Content-Type: *text\/plain/i.test(ph)) text = decoded.replace(/\r\n/g, "\n");
    else if (/Content-Type: *text\/html/i.test(ph)) html = decoded.replace(/\r\n/g, "\n");
  }
  return { subject, text, html };
}

function qp(s: string): string {
  const soft = s.replace(/=\r?\n/g, "");
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i] as string;
    if (c === "=" && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(c, "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}

/** RFC 2047 encoded words (`=?UTF-8?Q?…?=`, `=?UTF-8?B?…?=`) in a header. */
function words(s: string): string {
  return s
    .replace(/\?=\s+=\?/g, "?==?")
    .replace(/=\?utf-8\?([QB])\?([^?]*)\?=/gi, (_m, e: string, t: string) =>
      e.toUpperCase() === "B" ? Buffer.from(t, "base64").toString("utf8") : qp(t.replace(/_/g, " ")),
    );
}

/** Why the SMTP tests cannot run here (openssl missing), or undefined (fails under BSCHED_TEST_SERVERS=required). */
export function smtpMissing(): string | undefined {
  return missingPrograms({ "/usr/bin/openssl": "openssl" });
}
