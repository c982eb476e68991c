import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import { Socket } from "node:net";
import type { ClientChannel, SFTPWrapper, Client as SshClient } from "ssh2";
import type SftpClient from "ssh2-sftp-client";
import { BschedError, errnoCode } from "../../core/errors.ts";

/** How to reach and log in to an SFTP server: the config's keys, secrets already resolved on demand. */
export interface SftpLogin {
  /** The destination's name in the config, for messages. */
  name: string;
  host: string;
  port: number;
  user: string;
  /** `SHA256:…` the server's host key must have. */
  hostKey: string;
  privateKeyFile?: string;
  /** Called at connect time only: a secret is read when needed, never kept beyond the connect. */
  passphrase?: () => string;
  password?: () => string;
}

/** `SHA256:…` of a host key blob, as `ssh-keygen -lf` prints it (base64, no padding). */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The TCP socket under ssh2-sftp-client's ssh2 Client (not in their public API; absent: left as is). */
function socketOf(client: SftpClient): Socket | undefined {
  const sock = (client as unknown as { client?: { _sock?: unknown } }).client?._sock;
  return sock instanceof Socket ? sock : undefined;
}

/** The ssh2 Client under ssh2-sftp-client (its `client` property): exec channels open on it. */
function sshOf(client: SftpClient): SshClient | undefined {
  return (client as unknown as { client?: SshClient }).client;
}

/** What a command the server ran gave: its stdout, and its exit status (null: the server told none). */
export interface ExecResult {
  stdout: Buffer;
  code: number | null;
}

const sameFingerprint = (a: string, b: string) => a.replace(/=+$/, "") === b.replace(/=+$/, "");

/** A command run by the server that writes nothing for this long is given up (exec). */
const EXEC_IDLE_MS = 10 * 60_000;

/** A connect that may hang on a silent network: given up after this long. */
const READY_TIMEOUT_MS = 20_000;

/**
 * One SSH session with its SFTP channel, opened at first use (ssh2-sftp-client loaded then, so
 * commands that never touch SFTP never load it) and again after it dropped. The server's host
 * key must be the pinned one: anything else is refused before a credential is sent.
 */
export class SftpSession {
  readonly #login: SftpLogin;
  #client: SftpClient | undefined;
  #sftp: SFTPWrapper | undefined;
  #connecting: Promise<SFTPWrapper> | undefined;
  /** Operations running (hold/release). */
  #busy = 0;
  /** How to fail each request in flight: when the connection drops, none is left waiting. */
  readonly #pending = new Set<(e: Error) => void>();

  constructor(login: SftpLogin) {
    this.#login = login;
  }

  /** The channel of the open session, if any (requests on an older one are not tracked). */
  get current(): SFTPWrapper | undefined {
    return this.#sftp;
  }

  get address(): string {
    return `${this.#login.host}:${this.#login.port}`;
  }

  /** The SFTP channel, connecting (again) when there is none. */
  async sftp(): Promise<SFTPWrapper> {
    if (this.#sftp) return this.#sftp;
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /** Forget the session after a failure that may have left it unusable; the next call reconnects. */
  drop(): void {
    const c = this.#client;
    this.#client = undefined;
    this.#sftp = undefined;
    c?.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    this.#sftp = undefined;
    if (!c) return;
    // Waited for: the (idle, unreferenced) socket must keep the process alive until it closed.
    socketOf(c)?.ref();
    await c.end().catch(() => undefined);
  }

  async #connect(): Promise<SFTPWrapper> {
    const l = this.#login;
    const { default: Client } = await import("ssh2-sftp-client");
    let privateKey: Buffer | undefined;
    if (l.privateKeyFile !== undefined) {
      try {
        privateKey = await fs.readFile(l.privateKeyFile);
      } catch (e) {
        throw new BschedError(
          "AUTH_FAILED",
          `destination ${l.name}: cannot read the private key ${l.privateKeyFile} (${errnoCode(e) ?? (e as Error).message})`,
          { hint: `check destinations.${l.name}.privateKey: a key file readable by bsched` },
        );
      }
    }
    let offered: string | undefined;
    let refused = false;
    let raw: (Error & { level?: string; code?: string }) | undefined;
    const client = new Client(`bsched-${l.name}`, {
      // The library prints to the console by default: a drop is noticed here and reported by the
      // operation that meets it.
      error: () => this.#lost(client),
      end: () => this.#lost(client),
      close: () => this.#lost(client),
    });
    // The library rewords errors and loses ssh2's `level`, which tells a refused login apart.
    client.on("error", (e: Error) => {
      raw ??= e;
    });
    // Also straight from ssh2 (the library's own handlers ignore events it thinks expected).
    client.on("close", () => this.#lost(client));
    let sftp: SFTPWrapper;
    try {
      sftp = await client.connect({
        host: l.host,
        port: l.port,
        username: l.user,
        ...(privateKey === undefined ? {} : { privateKey }),
        ...(l.passphrase === undefined ? {} : { passphrase: l.passphrase() }),
        ...(l.password === undefined ? {} : { password: l.password() }),
        hostVerifier: (key: Buffer) => {
          offered = fingerprint(key);
          refused = !sameFingerprint(offered, l.hostKey);
          return !refused;
        },
        readyTimeout: READY_TIMEOUT_MS,
        retries: 0,
      });
    } catch (e) {
      client.end().catch(() => undefined);
      throw this.#connectError(e, raw, refused ? offered : undefined);
    }
    this.#client = client;
    this.#sftp = sftp;
    const sock = socketOf(client);
    // A server gone silent (cable pulled) is noticed by TCP keepalives (ssh2's own keepalive
    // timer would keep the process alive while idle).
    sock?.setKeepAlive(true, 15_000);
    if (this.#busy === 0) sock?.unref();
    return sftp;
  }

  /**
   * An operation runs: the open session keeps the process alive only while operations run, so
   * a command that forgot to close its destination still exits when its work is done.
   */
  hold(): void {
    if (this.#busy++ === 0 && this.#client) socketOf(this.#client)?.ref();
  }

  release(): void {
    if (--this.#busy === 0 && this.#client) socketOf(this.#client)?.unref();
  }

  /**
   * Run `command` by the server over an exec channel of the open session (one login per run, not
   * one per command): its stdout (at most `max` bytes, else undefined) and exit status. Undefined
   * too when the server refuses exec (an sftp-only account, a server without a shell): callers do
   * without. Its stdin is closed at once (a ForceCommand internal-sftp answering in its place sees
   * the end and exits); its stderr is drained and dropped. A lost connection rejects (code 7).
   */
  async exec(command: string, max: number, signal?: AbortSignal): Promise<ExecResult | undefined> {
    this.hold();
    try {
      await this.sftp();
      const ssh = this.#client && sshOf(this.#client);
      if (!ssh) throw Object.assign(new Error("not connected"), { code: 7 });
      return await new Promise<ExecResult | undefined>((resolve, reject) => {
        let chan: ClientChannel | undefined;
        const untrack = this.track(reject);
        const stop = () => {
          chan?.close();
          reject(signal?.reason ?? new Error("aborted"));
        };
        if (signal?.aborted) return stop();
        signal?.addEventListener("abort", stop, { once: true });
        let idle: NodeJS.Timeout | undefined;
        const done = (v: ExecResult | undefined) => {
          clearTimeout(idle);
          untrack();
          signal?.removeEventListener("abort", stop);
          resolve(v);
        };
        try {
          ssh.exec(command, (err, ch) => {
            // Refused: the channel or the exec request (ssh2 closes the channel).
            if (err) return done(undefined);
            chan = ch;
            // A command that neither writes nor ends for this long (a server answering with
            // something interactive) is given up: callers do without, as when exec is refused.
            const quiet = () => {
              clearTimeout(idle);
              idle = setTimeout(() => {
                ch.close();
                done(undefined);
              }, EXEC_IDLE_MS);
            };
            quiet();
            const out: Buffer[] = [];
            let size = 0;
            let code: number | null = null;
            ch.on("data", (d: Buffer) => {
              quiet();
              size += d.length;
              if (size <= max) out.push(d);
              else ch.close();
            });
            ch.stderr.resume();
            ch.on("exit", (c: number | null) => {
              code = typeof c === "number" ? c : null;
            });
            ch.on("close", () => done(size > max ? undefined : { stdout: Buffer.concat(out), code }));
            ch.end();
          });
        } catch (e) {
          untrack();
          reject(e);
        }
      });
    } finally {
      this.release();
    }
  }

  /**
   * Hold the socket's writes until the function returned is called: requests issued together
   * then leave in one write call. ssh2 writes each packet in three pieces (length, body, tag),
   * a system call each on loopback; a stream's requests corked together make one.
   */
  cork(): () => void {
    const sock = this.#client && socketOf(this.#client);
    if (!sock) return () => undefined;
    sock.cork();
    return () => sock.uncork();
  }

  #lost(client: SftpClient): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#sftp = undefined;
    // ssh2 may never answer a request whose connection died: fail them all now.
    const lost = Object.assign(new Error("Connection lost"), { code: 7 });
    for (const fail of [...this.#pending]) fail(lost);
  }

  /** Register a request in flight (see #lost); returns how to unregister it. */
  track(fail: (e: Error) => void): () => void {
    this.#pending.add(fail);
    return () => this.#pending.delete(fail);
  }

  #connectError(e: unknown, raw: (Error & { level?: string; code?: string }) | undefined, offered?: string) {
    const l = this.#login;
    if (offered !== undefined) {
      return new BschedError(
        "HOST_KEY_MISMATCH",
        `destination ${l.name}: the server at ${this.address} offered the host key ${offered}, not the pinned ${l.hostKey}; nothing was sent to it`,
        {
          hint: `check that the server is the right one (its key changed, or something answers in its place); if its key was changed on purpose, set destinations.${l.name}.hostKey to the new fingerprint (\`ssh-keygen -lf\` on the server's public host key)`,
        },
      );
    }
    const err = raw ?? (e as Error & { level?: string; code?: string });
    const msg = (e as Error).message ?? String(e);
    const level = err?.level;
    const code = err?.code ?? errnoCode(e);
    if (level === "client-authentication" || /authentication methods failed/i.test(msg)) {
      return new BschedError(
        "AUTH_FAILED",
        `destination ${l.name}: the server at ${this.address} refused the login of user ${l.user}`,
        {
          hint: `check destinations.${l.name}.user and ${
            [
              ...(l.privateKeyFile === undefined
                ? []
                : [`privateKey (its public key must be in that user's authorized_keys on the server)`]),
              ...(l.password === undefined ? [] : ["password (`bsched secret set NAME`, then secret:NAME)"]),
            ].join(" or ") || "set a privateKey or a password"
          }`,
        },
      );
    }
    if (/passphrase|decrypt|parse privateKey|Cannot parse/i.test(msg)) {
      return new BschedError(
        "AUTH_FAILED",
        `destination ${l.name}: cannot use the private key ${l.privateKeyFile ?? ""} (${msg.replace(/^.*?: /, "")})`,
        {
          hint: `check destinations.${l.name}.privateKey and, for an encrypted key, destinations.${l.name}.passphrase`,
        },
      );
    }
    if (
      level === "client-socket" ||
      level === "client-timeout" ||
      level === "client-dns" ||
      (code !== undefined &&
        [
          "ECONNREFUSED",
          "ENOTFOUND",
          "EAI_AGAIN",
          "ETIMEDOUT",
          "EHOSTUNREACH",
          "ENETUNREACH",
          "ECONNRESET",
        ].includes(code)) ||
      /timed out|refused connection|lookup failed/i.test(msg)
    ) {
      return new BschedError(
        "UNREACHABLE",
        `destination ${l.name}: cannot reach the SFTP server at ${this.address} (${code ?? msg})`,
        {
          hint: `check that the server is up and reachable from here, and destinations.${l.name}.host and port`,
        },
      );
    }
    return new BschedError(
      "UNREACHABLE",
      `destination ${l.name}: connecting to ${this.address} failed: ${msg}`,
      {
        hint: `check the server and destinations.${l.name}`,
      },
    );
  }
}
