import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { constants as C, openSync, rmSync } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BschedError } from "../../core/errors.ts";
import { exactly } from "../exact-size.ts";
import { quoted } from "./remote-names.ts";
import { isConnectionLost, isNotFound, notFound, ntStatusOf, type SmbPlace, smbError } from "./smb-errors.ts";

/** The login a session connects with; the password lives only here and in the auth file. */
export interface SmbLogin {
  server: string;
  /** The share's name (the part after `//server/`). */
  share: string;
  port: number;
  user: string;
  domain: string | undefined;
  password: string;
}

/** What one command printed, and the first NT_STATUS in it (undefined: it succeeded). */
export interface Reply {
  lines: string[];
  status: string | undefined;
}

/** Session folders of this process: removed at exit, even when a destination was never closed. */
const liveDirs = new Set<string>();
let exitHook = false;

function track(dir: string): void {
  liveDirs.add(dir);
  if (exitHook) return;
  exitHook = true;
  process.once("exit", () => {
    for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  });
}

/**
 * The line `pwd` prints: sent after every command, it marks where that command's output ends
 * (smbclient reading commands from a pipe prints no prompt). The session never changes folder,
 * and no other output line starts this way (listings are indented, errors start NT_STATUS_).
 */
const MARK = /^Current directory is \\\\/;

/**
 * One `smbclient //server/share` process, fed commands on stdin, one at a time: it connects and
 * authenticates once, then serves every command, so many small files cost a round trip each,
 * not a new connection. `stdbuf -i0 -oL`: its stdout line-buffered (a pipe would hold the output
 * back until it fills), and its stdin unbuffered — smbclient polls the descriptor before each
 * line, so a next line already swallowed into stdio's buffer would wait there forever.
 *
 * The credentials reach smbclient only through an authentication file (`-A`), created 0600 in a
 * private 0700 folder (os.tmpdir()/bsched-smb-…) and deleted as soon as the session is up (or
 * failed): never on a command line, never in the child's environment. File data goes through a
 * FIFO in the same folder (`put FIFO remote`, `get remote FIFO`), never through stdout, which
 * carries only smbclient's messages.
 */
export class SmbSession {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #dir: string;
  readonly #fifo: string;
  readonly #place: SmbPlace;
  #buf = "";
  /** Lines of the command running, and how to finish it. */
  #current: { lines: string[]; done: (lines: string[]) => void; fail: (e: Error) => void } | undefined;
  /** The command whose end mark was just seen: its last stderr lines may still be on their way. */
  #finishing: { lines: string[] } | undefined;
  #stderr = "";
  #errBuf = "";
  #exited = false;
  #killed = false;

  private constructor(child: ChildProcessWithoutNullStreams, dir: string, place: SmbPlace) {
    this.#child = child;
    this.#dir = dir;
    this.#fifo = path.join(dir, "data.fifo");
    this.#place = place;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => this.#onData(d));
    child.stderr.setEncoding("utf8");
    // smbclient says some failures on stderr (`cli_push returned NT_STATUS_DISK_FULL`): they
    // belong to the command running, whose lines they join.
    child.stderr.on("data", (d: string) => {
      this.#stderr = (this.#stderr + d).slice(-4000);
      this.#errBuf += d;
      for (;;) {
        const nl = this.#errBuf.indexOf("\n");
        if (nl < 0) break;
        const line = this.#errBuf.slice(0, nl);
        this.#errBuf = this.#errBuf.slice(nl + 1);
        (this.#current ?? this.#finishing)?.lines.push(line);
      }
    });
    child.stdin.on("error", () => undefined);
    child.on("exit", (code) => this.#onExit(code));
  }

  /** Connect and log in; fails with AUTH_FAILED, UNREACHABLE, DESTINATION_MISSING… */
  static async start(login: SmbLogin, place: SmbPlace): Promise<SmbSession> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "bsched-smb-"));
    track(dir);
    const auth = path.join(dir, "auth");
    try {
      await fs.chmod(dir, 0o700);
      if (/[\r\n]/.test(login.password) || /[\r\n]/.test(login.user) || /[\r\n]/.test(login.domain ?? "")) {
        throw new BschedError(
          "AUTH_FAILED",
          `destination ${place.name}: the login ${place.account} holds a line break`,
          {
            hint: `an SMB login cannot hold one: fix ${place.loginKey}`,
          },
        );
      }
      const lines = [`username=${login.user}`, `password=${login.password}`];
      if (login.domain !== undefined) lines.push(`domain=${login.domain}`);
      await fs.writeFile(auth, `${lines.join("\n")}\n`, { mode: 0o600, flag: "wx" });
      // The environment passed on, minus what smbclient would take a password from.
      const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: "C" };
      for (const k of ["PASSWD", "PASSWD_FD", "PASSWD_FILE", "USER", "LOGNAME"]) delete env[k];
      // One process started, not two: the shell makes the FIFO, then becomes smbclient (a spawn
      // blocks this process until the child runs: 20-100 ms each on a busy machine). Every value
      // is an argument ("$0", "$@"), never part of the script.
      const child = spawn(
        "sh",
        [
          "-c",
          'mkfifo -m 600 "$0" && exec stdbuf -i0 -oL smbclient "$@"',
          path.join(dir, "data.fifo"),
          `//${login.server}/${login.share}`,
          "-p",
          String(login.port),
          "-A",
          auth,
        ],
        { env, stdio: ["pipe", "pipe", "pipe"], cwd: dir },
      );
      const s = new SmbSession(child, dir, place);
      await new Promise<void>((resolve, reject) => {
        child.on("error", reject);
        s.#current = { lines: [], done: () => resolve(), fail: reject };
        child.stdin.write("pwd\n");
      }).catch((e: unknown) => {
        s.kill();
        throw s.#connectError(e);
      });
      s.#hold(false);
      return s;
    } catch (e) {
      await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      liveDirs.delete(dir);
      throw e;
    } finally {
      // Once logged in smbclient never reads it again: it lives only while the session starts.
      await fs.rm(auth, { force: true }).catch(() => undefined);
    }
  }

  #connectError(e: unknown): unknown {
    if (e instanceof BschedError) return e;
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      return new BschedError("IO", `destination ${this.#place.name}: smbclient is not installed`, {
        hint: "install it (Debian: `apt-get install smbclient`)",
      });
    }
    return e;
  }

  get alive(): boolean {
    return !this.#exited && !this.#killed;
  }

  #onData(d: string): void {
    this.#buf += d;
    for (;;) {
      const nl = this.#buf.indexOf("\n");
      if (nl < 0) break;
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      const cur = this.#current;
      if (!cur) continue;
      if (MARK.test(line)) {
        // What smbclient wrote on stderr before the mark was written before it: read in the
        // same turn of the event loop, it is in by the next one.
        this.#current = undefined;
        this.#finishing = cur;
        setImmediate(() => {
          if (this.#finishing === cur) this.#finishing = undefined;
          cur.done(cur.lines);
        });
      } else cur.lines.push(line);
    }
  }

  #onExit(code: number | null): void {
    this.#exited = true;
    const cur = this.#current;
    this.#current = undefined;
    if (cur && code === 127) {
      // The shell found no stdbuf or smbclient to run.
      cur.fail(
        new BschedError("IO", `destination ${this.#place.name}: smbclient (or stdbuf) is not installed`, {
          hint: "install them (Debian: `apt-get install smbclient coreutils`)",
        }),
      );
    } else if (cur) {
      const lines = [...cur.lines, ...this.#buf.split("\n"), ...this.#stderr.split("\n")].filter(
        (l) => l !== "",
      );
      const status = ntStatusOf(lines) ?? (this.#killed ? undefined : "NT_STATUS_CONNECTION_DISCONNECTED");
      cur.fail(smbError(this.#place, "talking to the server", status, lines));
    }
    this.#removed = fs
      .rm(this.#dir, { recursive: true, force: true })
      .catch(() => undefined)
      .then(() => {
        liveDirs.delete(this.#dir);
      });
  }

  /** The session folder's removal, once the process ended. */
  #removed: Promise<void> | undefined;

  /**
   * An idle session never keeps the process alive (a command whose operations never close
   * their destination still exits); a running command does.
   */
  #hold(busy: boolean): void {
    for (const h of [this.#child, this.#child.stdin, this.#child.stdout, this.#child.stderr] as {
      ref?(): void;
      unref?(): void;
    }[]) {
      if (busy) h.ref?.();
      else h.unref?.();
    }
  }

  /** Run one command (the caller quoted its paths); its output and status. Fails only when the session ends. */
  run(command: string): Promise<Reply> {
    if (/[\r\n]/.test(command)) throw new Error("an smbclient command is one line");
    return new Promise<Reply>((resolve, reject) => {
      if (!this.alive) {
        reject(smbError(this.#place, "talking to the server", "NT_STATUS_CONNECTION_DISCONNECTED", []));
        return;
      }
      if (this.#current) throw new Error("SmbSession: one command at a time");
      this.#hold(true);
      this.#current = {
        lines: [],
        done: (lines) => {
          this.#hold(false);
          const status = ntStatusOf(lines);
          // The connection is gone: this process is of no more use (the pool starts a new one).
          if (isConnectionLost(status)) {
            this.kill();
            reject(smbError(this.#place, `running ${command.split(" ")[0]}`, status, lines));
          } else resolve({ lines, status });
        },
        fail: (e) => {
          this.#hold(false);
          reject(e);
        },
      };
      this.#child.stdin.write(`${command}\npwd\n`);
    });
  }

  /** Run a command and fail on any NT_STATUS, worded for `doing`. */
  async must(command: string, doing: string): Promise<Reply> {
    const r = await this.run(command);
    if (r.status !== undefined) throw smbError(this.#place, doing, r.status, r.lines);
    return r;
  }

  /** Our reading end of the FIFO, opened read-write so that it never sees an end before smbclient opened it. */
  #fifoReader(): net.Socket {
    const fd = openSync(this.#fifo, C.O_RDWR | C.O_NONBLOCK);
    return new net.Socket({ fd, readable: true, writable: false });
  }

  /**
   * Our writing end of the FIFO, opened once smbclient has opened its reading end (a write-only
   * non-blocking open fails with ENXIO until then; data written with no reader would be lost
   * when we close). Undefined when the command ended without opening it.
   */
  async #fifoWriter(ended: () => boolean): Promise<net.Socket | undefined> {
    for (let wait = 0; ; wait = Math.min(20, wait + 1)) {
      try {
        const fd = openSync(this.#fifo, C.O_WRONLY | C.O_NONBLOCK);
        return new net.Socket({ fd, readable: false, writable: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENXIO") throw e;
      }
      if (ended()) return undefined;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /**
   * Upload `size` bytes of `body` to `remote` (streamed through the FIFO, no local copy). A body
   * shorter or longer than `size` fails (exactly()); smbclient then sees the FIFO end and stops.
   */
  async upload(remote: string, body: Readable, size: number, where: string): Promise<void> {
    let ended = false;
    const command = this.run(`put ${quoted(this.#fifo)} ${quoted(remote)}`).finally(() => {
      ended = true;
    });
    command.catch(() => undefined);
    let sock: net.Socket | undefined;
    try {
      sock = await this.#fifoWriter(() => ended);
    } catch (e) {
      body.destroy();
      this.kill();
      throw e;
    }
    let pumpError: unknown;
    const pump = sock
      ? pipeline(body, exactly(size, where), sock).catch((e: unknown) => {
          pumpError = e;
        })
      : Promise.resolve(body.destroy());
    let reply: Reply;
    try {
      reply = await command;
    } catch (e) {
      sock?.destroy();
      body.destroy();
      throw e;
    }
    if (reply.status !== undefined) {
      sock?.destroy();
      body.destroy();
      throw smbError(this.#place, `uploading ${where}`, reply.status, reply.lines);
    }
    await pump;
    if (pumpError !== undefined) throw pumpError;
    if (!sock) {
      throw new BschedError(
        "IO",
        `${where}: smbclient did not read the upload [${reply.lines.join(" ").trim()}]`,
        {
          hint: "run it again; if it persists, check the smbclient version",
        },
      );
    }
  }

  /**
   * The bytes of `remote` (`size` of them, as allinfo said) streamed from smbclient's `get`
   * through the FIFO. `onEnd` runs once when the transfer is over; a reader that stops early ends
   * the session (smbclient would block writing the rest): the next operation opens a new one.
   */
  download(remote: string, size: number, where: string, onEnd: () => void): Readable {
    const sock = this.#fifoReader();
    let got = 0;
    let finished = false;
    let commandDone = false;
    const end = () => {
      if (finished) return;
      finished = true;
      sock.destroy();
      onEnd();
    };
    const out = new Readable({
      read() {
        sock.resume();
      },
      destroy: (err, cb) => {
        if (!finished) {
          // Stopped early: smbclient is mid-get. Ending the process is the only clean stop.
          this.kill();
          end();
        }
        cb(err);
      },
    });
    sock.on("data", (c: Buffer) => {
      const take = c.subarray(0, Math.max(0, size - got));
      got += c.length;
      if (got > size) {
        out.destroy(
          new BschedError("IO", `${where}: more than the ${size} bytes expected arrived`, {
            hint: "the file changed on the share while it was read: read it again",
          }),
        );
        return;
      }
      if (!out.push(take)) sock.pause();
      if (got === size && commandDone) {
        end();
        out.push(null);
      }
    });
    sock.on("error", (e) => out.destroy(e));
    this.run(`get ${quoted(remote)} ${quoted(this.#fifo)}`).then(
      (r) => {
        commandDone = true;
        if (r.status !== undefined) {
          end();
          // Gone since its size was read (a remove renamed it away): missing, as the interface says.
          out.destroy(
            isNotFound(r.status)
              ? notFound(where, r.status)
              : smbError(this.#place, `reading ${where}`, r.status, r.lines),
          );
          return;
        }
        // "getting file \x of size N as …": the size smbclient read, checked against the expected one.
        const said = r.lines.map((l) => /^getting file .* of size (\d+) as /.exec(l)).find(Boolean);
        if (said && Number(said[1]) !== size) {
          end();
          out.destroy(
            new BschedError("IO", `${where}: ${said[1]} bytes on the share, ${size} expected`, {
              hint: "the file changed on the share while it was read: read it again",
            }),
          );
          return;
        }
        if (got === size) {
          end();
          out.push(null);
        }
      },
      (e: unknown) => {
        commandDone = true;
        out.destroy(e as Error);
      },
    );
    return out;
  }

  /** Download `remote` into the local file `local` (a path without `"`: our own scratch). */
  async downloadTo(remote: string, local: string, doing: string): Promise<void> {
    await this.must(`get ${quoted(remote)} ${quoted(local)}`, doing);
  }

  /** End the process now (a stopped transfer, a failed start). */
  kill(): void {
    if (this.#exited || this.#killed) return;
    this.#killed = true;
    this.#child.kill("SIGKILL");
  }

  /** Quit politely and wait for the process to end. */
  async close(): Promise<void> {
    if (this.#exited) {
      await this.#removed;
      return;
    }
    const gone = new Promise<void>((r) => this.#child.once("exit", () => r()));
    if (this.#killed) {
      await gone;
      await this.#removed;
      return;
    }
    this.#child.stdin.end("quit\n");
    const timer = setTimeout(() => this.kill(), 5000);
    await gone;
    clearTimeout(timer);
    await this.#removed;
  }
}
