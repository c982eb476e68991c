import path from "node:path";
import type { FileEntryWithStats, SFTPWrapper, Stats } from "ssh2";
import { BschedError } from "../../core/errors.ts";
import { inParallel } from "../../core/parallel.ts";
import type { ExecResult, SftpSession } from "./session.ts";

/** SFTP status codes (draft-ietf-secsh-filexfer-02), as ssh2 gives them in `code`. */
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;
const FAILURE = 4;
const NO_CONNECTION = 6;
const CONNECTION_LOST = 7;

type SftpErr = Error & { code?: number | string };

/** A file system statistic of the server (statvfs@openssh.com). */
export interface RemoteSpace {
  free: number;
  blockSize: number;
}

/**
 * The file operations a destination needs, over one SftpSession, promised and worded: a missing
 * file is an `ENOENT`-coded error (what the Destination contract asks), a refusal is
 * PERMISSION_DENIED, a lost connection UNREACHABLE (and the session is dropped, so the next
 * operation reconnects), anything else IO naming the destination and the remote path.
 */
export class RemoteFs {
  readonly session: SftpSession;
  readonly #name: string;
  readonly #user: string;

  constructor(session: SftpSession, name: string, user: string) {
    this.session = session;
    this.#name = name;
    this.#user = user;
  }

  /**
   * Run one SFTP request (`fn` calls back once) and word its failure. `via`: the channel a handle
   * was opened on (a handle means nothing on a new session); default: the session's, connecting.
   */
  async call<T>(
    doing: string,
    at: string,
    fn: (sftp: SFTPWrapper, cb: (err: unknown, v?: T) => void) => void,
    via?: SFTPWrapper,
  ): Promise<T> {
    this.session.hold();
    try {
      const sftp = via ?? (await this.session.sftp());
      let untrack: () => unknown = () => undefined;
      return await new Promise<T>((resolve, reject) => {
        // ssh2 silently drops a request on a closed channel (its callback never runs).
        if (!isOpen(sftp)) throw Object.assign(new Error("not connected"), { code: CONNECTION_LOST });
        if (via === undefined || via === this.session.current) untrack = this.session.track(reject);
        try {
          fn(sftp, (err, v) => (err ? reject(err) : resolve(v as T)));
        } catch (e) {
          reject(e);
        }
      }).finally(() => untrack());
    } catch (e) {
      throw this.error(e, doing, at);
    } finally {
      this.session.release();
    }
  }

  /** An SFTP failure as the Destination interface words it (see the class comment). */
  error(e: unknown, doing: string, at: string): Error {
    if (e instanceof BschedError) return e;
    const err = e as SftpErr;
    const msg = err?.message ?? String(e);
    if (err?.code === NO_SUCH_FILE || err?.code === "ENOENT") {
      return Object.assign(new Error(`${at}: no such file or folder on the server (${doing})`), {
        code: "ENOENT",
        path: at,
      });
    }
    if (err?.code === PERMISSION_DENIED) {
      return new BschedError(
        "PERMISSION_DENIED",
        `destination ${this.#name}: permission denied ${doing} ${at} on ${this.session.address}`,
        {
          hint: `give user ${this.#user} read and write access to that folder on the server, or change destinations.${this.#name}.path`,
        },
      );
    }
    if (
      err?.code === NO_CONNECTION ||
      err?.code === CONNECTION_LOST ||
      err?.code === "ECONNRESET" ||
      /No response from server|not connected|channel (is )?closed/i.test(msg)
    ) {
      this.session.drop();
      return new BschedError(
        "UNREACHABLE",
        `destination ${this.#name}: lost the connection to ${this.session.address} while ${doing} ${at}`,
        {
          hint: "check that the server is up and reachable, then run again (nothing partial is ever listed)",
        },
      );
    }
    const status = err?.code === FAILURE ? "the server refused it" : msg;
    return new BschedError("IO", `destination ${this.#name}: ${doing} ${at} failed: ${status}`, {
      hint: "check the server's disk and logs, then run again",
    });
  }

  /** A command run by the server (SftpSession.exec), its failures worded as the other requests'. */
  async exec(
    doing: string,
    at: string,
    command: string,
    max: number,
    signal?: AbortSignal,
  ): Promise<ExecResult | undefined> {
    try {
      return await this.session.exec(command, max, signal);
    } catch (e) {
      if (signal?.aborted) throw e;
      throw this.error(e, doing, at);
    }
  }

  readdir(dir: string): Promise<FileEntryWithStats[]> {
    return this.call("listing", dir, (s, cb) => s.readdir(dir, cb));
  }

  lstat(p: string): Promise<Stats> {
    return this.call("reading", p, (s, cb) => s.lstat(p, cb));
  }

  async exists(p: string): Promise<boolean> {
    try {
      await this.lstat(p);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return false;
      throw e;
    }
  }

  mkdir(p: string): Promise<void> {
    return this.call("creating the folder", p, (s, cb) => s.mkdir(p, cb));
  }

  /** Make `p` and its missing parents (a folder that exists is fine). */
  async mkdirp(p: string): Promise<void> {
    const st = await this.lstat(p).catch((e: unknown) => {
      if ((e as { code?: string }).code === "ENOENT") return undefined;
      throw e;
    });
    if (st?.isDirectory()) return;
    if (st) {
      throw new BschedError("IO", `destination ${this.#name}: ${p} on the server is not a folder`, {
        hint: `move it away, or change destinations.${this.#name}.path`,
      });
    }
    const parent = path.posix.dirname(p);
    if (parent !== p) await this.mkdirp(parent);
    await this.mkdir(p).catch(async (e: unknown) => {
      // Made meanwhile by another run: fine.
      if (!(await this.lstat(p).catch(() => undefined))?.isDirectory()) throw e;
    });
  }

  /** SFTP's own rename: refused when the target exists (OpenSSH: link+unlink for files, a checked rename for folders). */
  rename(from: string, to: string): Promise<void> {
    return this.call("renaming", `${from} to ${to}`, (s, cb) => s.rename(from, to, cb));
  }

  unlink(p: string): Promise<void> {
    return this.call("deleting", p, (s, cb) => s.unlink(p, cb));
  }

  rmdir(p: string): Promise<void> {
    return this.call("deleting the folder", p, (s, cb) => s.rmdir(p, cb));
  }

  /** Delete `p` and everything under it; a missing `p` is fine. Files go several at a time. */
  async rmTree(p: string): Promise<void> {
    let st: Stats;
    try {
      st = await this.lstat(p);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return;
      throw e;
    }
    if (!st.isDirectory()) {
      await this.unlink(p).catch(ignoreMissing);
      return;
    }
    const entries = await this.readdir(p).catch((e: unknown) => {
      ignoreMissing(e);
      return [];
    });
    await inParallel(entries, 16, async (e) => {
      const child = path.posix.join(p, e.filename);
      if (e.attrs.isDirectory()) await this.rmTree(child);
      else await this.unlink(child).catch(ignoreMissing);
    });
    await this.rmdir(p).catch(ignoreMissing);
  }

  /** Open a remote file: the handle is bound to the session it was opened on. */
  async open(p: string, flags: "r" | "r+" | "wx" | "w", doing: string): Promise<RemoteHandle> {
    const sftp = await this.session.sftp();
    const h = await this.call<Buffer>(doing, p, (s, cb) => s.open(p, flags, cb), sftp);
    return { sftp, h, at: p };
  }

  closeHandle(f: RemoteHandle): Promise<void> {
    return this.call("closing", f.at, (s, cb) => s.close(f.h, cb), f.sftp);
  }

  fstat(f: RemoteHandle): Promise<Stats> {
    return this.call("reading", f.at, (s, cb) => s.fstat(f.h, cb), f.sftp);
  }

  read(f: RemoteHandle, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    if (length <= 0) return Promise.resolve(0);
    return this.call<number>(
      "reading",
      f.at,
      (s, cb) => s.read(f.h, buffer, offset, length, position, (err, n) => cb(err, n)),
      f.sftp,
    );
  }

  write(f: RemoteHandle, data: Buffer, position: number): Promise<void> {
    return this.call("writing", f.at, (s, cb) => s.write(f.h, data, 0, data.length, position, cb), f.sftp);
  }

  /** Ask the server to sync a file to its disk (fsync@openssh.com); a server without it is trusted as it is. */
  async fsync(f: RemoteHandle): Promise<void> {
    if (!hasExtension(f.sftp, "fsync@openssh.com")) return;
    await this.call("syncing", f.at, (s, cb) => s.ext_openssh_fsync(f.h, cb), f.sftp);
  }

  /** Write a small file whole: `wx` refuses an existing one. */
  async writeFile(p: string, data: Buffer, flags: "wx" | "w", opts: { fsync?: boolean } = {}): Promise<void> {
    const f = await this.open(p, flags, "creating");
    try {
      for (let at = 0; at < data.length; at += 32 * 1024) {
        await this.write(f, data.subarray(at, Math.min(data.length, at + 32 * 1024)), at);
      }
      if (opts.fsync) await this.fsync(f);
    } finally {
      await this.closeHandle(f).catch(() => undefined);
    }
  }

  /** A small file whole (a lock, a manifest read back). */
  async readFile(p: string, max = 1 << 20): Promise<Buffer> {
    const f = await this.open(p, "r", "reading");
    try {
      const out: Buffer[] = [];
      let at = 0;
      for (;;) {
        const buf = Buffer.allocUnsafe(32 * 1024);
        const n = await this.read(f, buf, 0, buf.length, at);
        if (n === 0) break;
        out.push(buf.subarray(0, n));
        at += n;
        if (at > max)
          throw new BschedError("IO", `destination ${this.#name}: ${p} is larger than ${max} bytes`);
      }
      return Buffer.concat(out);
    } finally {
      await this.closeHandle(f).catch(() => undefined);
    }
  }

  /** Free bytes where the server tells (statvfs@openssh.com), else undefined. */
  async space(p: string): Promise<RemoteSpace | undefined> {
    const sftp = await this.session.sftp();
    if (!hasExtension(sftp, "statvfs@openssh.com")) return undefined;
    const st = await this.call<{ f_frsize: number; f_bsize: number; f_bavail: number }>(
      "measuring the free space of",
      p,
      (s, cb) => s.ext_openssh_statvfs(p, cb),
    );
    const unit = Number(st.f_frsize) || Number(st.f_bsize) || 4096;
    return { free: Number(st.f_bavail) * unit, blockSize: Number(st.f_bsize) || unit };
  }
}

/** An open file on the server, on the channel that opened it. */
export interface RemoteHandle {
  sftp: SFTPWrapper;
  h: Buffer;
  /** Its remote path, for messages. */
  at: string;
}

function isOpen(sftp: SFTPWrapper): boolean {
  return (sftp as unknown as { outgoing?: { state?: string } }).outgoing?.state === "open";
}

function hasExtension(sftp: SFTPWrapper, name: string): boolean {
  return (sftp as unknown as { _extensions?: Record<string, string> })._extensions?.[name] !== undefined;
}

function ignoreMissing(e: unknown): void {
  if ((e as { code?: string }).code !== "ENOENT") throw e;
}
