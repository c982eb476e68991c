import fs from "node:fs/promises";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { DEFAULT_TRANSFERS } from "../../config/destinations.ts";
import type { DestinationSpec } from "../../config/load.ts";
import { BschedError } from "../../core/errors.ts";
import type { Clock } from "../../platform/clock.ts";
import {
  deletingName,
  isRunLockName,
  parseDeletingName,
  parseTempName,
  runLockName,
  staleLockName,
  tempName,
} from "../../platform/names.ts";
import { rangeStream } from "../../platform/range-stream.ts";
import { resolveSecret } from "../../secrets/secrets.ts";
import { isBackupName } from "../../snapshot/naming.ts";
import type { Destination, Lease, ReadHandle, Staging } from "../destination.ts";
import { scratchOf } from "../open.ts";
import { parseAllinfo, parseDiskFree, parseLs, parseLsTree } from "./listing.ts";
import { acquireSmbLock, type LockFiles } from "./lock.ts";
import { SessionPool } from "./pool.ts";
import { quoted, remotePath } from "./remote-names.ts";
import type { SmbSession } from "./session.ts";
import { isNotFound, notFound, type SmbPlace, smbError } from "./smb-errors.ts";
import { stagingOnShare } from "./staging.ts";

type SmbConfig = Extract<DestinationSpec["config"], { type: "smb" }>;

/** The `smb` destination (docs/design.md "SMB"): a share reached through Debian's smbclient. */
export function openSmb(spec: DestinationSpec): Destination {
  return new SmbDestination(spec);
}

export class SmbDestination implements Destination {
  readonly name: string;
  readonly where: string;
  readonly #spec: DestinationSpec;
  readonly #c: SmbConfig;
  readonly #place: SmbPlace;
  readonly #pool: SessionPool;
  /** The folder under the share, `/`-separated ("" for the share's top). */
  readonly #base: string;

  constructor(spec: DestinationSpec) {
    if (spec.config.type !== "smb") throw new Error("SmbDestination: not an smb destination");
    const c = spec.config;
    this.#spec = spec;
    this.#c = c;
    this.name = spec.name;
    this.#base = c.path.replace(/^\/+|\/+$/g, "");
    this.where = `${c.share}${this.#base === "" ? "" : `/${this.#base}`}${c.port === 445 ? "" : ` (port ${c.port})`}`;
    const [, server = "", share = ""] = /^\/\/([^/]+)\/([^/]+)$/.exec(c.share) ?? [];
    const own = c.login === "service" ? spec.serviceLogin : c.login;
    const loginKey = c.login === "service" ? "server.serviceLogin" : `destinations.${spec.name}.login`;
    this.#place = {
      name: spec.name,
      share: c.share,
      server,
      port: c.port,
      account:
        own === undefined ? "(none)" : own.domain === undefined ? own.user : `${own.domain}\\${own.user}`,
      loginKey,
      passwordRef: own?.password ?? "",
    };
    this.#pool = new SessionPool(
      () => {
        if (own === undefined) {
          throw new BschedError(
            "CONFIG_INVALID",
            `destinations.${spec.name}.login is "service" but server.serviceLogin is not set`,
            {
              hint: "add server.serviceLogin: { domain: …, user: …, password: secret:NAME }, or give the destination its own login",
            },
          );
        }
        return {
          server,
          share,
          port: c.port,
          user: own.user,
          domain: own.domain,
          password: resolveSecret(own.password, spec.state, `${loginKey}.password`),
        };
      },
      this.#place,
      // One session per file a copy sends at once, and one more for the commands between them.
      (c.transfers ?? DEFAULT_TRANSFERS) + 1,
    );
  }

  locationOf(backup: string, file?: string): string {
    const top = `${this.#c.share}${this.#base === "" ? "" : `/${this.#base}`}/${backup}`;
    return file === undefined ? top : `${top}/${file}`;
  }

  /** The share-relative path of `parts` under the destination's folder. */
  #remote(...parts: string[]): string {
    return remotePath(this.#base, ...parts);
  }

  #error(doing: string, r: { status: string | undefined; lines: string[] }): Error {
    return smbError(this.#place, doing, r.status, r.lines);
  }

  async ready(): Promise<void> {
    await this.#pool.use(async (s) => {
      let sofar = "";
      for (const part of this.#base.split("/").filter(Boolean)) {
        sofar = sofar === "" ? part : `${sofar}/${part}`;
        await mkdirIfMissing(s, remotePath(sofar), (r) => this.#error(`making the folder ${sofar}`, r));
      }
    });
  }

  async #list(...parts: string[]) {
    const dir = this.#remote(...parts);
    const r = await this.#pool.use((s) => s.run(`ls ${quoted(`${dir}\\*`)}`));
    if (isNotFound(r.status)) return [];
    if (r.status !== undefined) throw this.#error(`listing ${dir}`, r);
    return parseLs(r.lines);
  }

  async names(): Promise<string[]> {
    return (await this.#list()).map((e) => e.name);
  }

  async topFiles(backup: string): Promise<{ name: string; size: number }[]> {
    return (await this.#list(backup)).filter((e) => !e.dir).map((e) => ({ name: e.name, size: e.size }));
  }

  /**
   * Every stored file's size from one recursive `ls` (a copy's size check: one round trip, not
   * one `allinfo` per file). smbclient's `recurse` toggles (whatever its argument): on for this
   * listing only, then off again — a session left recursing would list nested names as the top's,
   * so one whose toggle back did not answer is ended.
   */
  async storedSizes(backup: string): Promise<Map<string, number>> {
    const top = this.#remote(backup);
    const r = await this.#pool.use(async (s) => {
      await s.must("recurse", `listing ${this.locationOf(backup)}`);
      try {
        return await s.run(`ls ${quoted(`${top}\\*`)}`);
      } finally {
        await s.run("recurse").catch(() => s.kill());
      }
    });
    if (isNotFound(r.status)) return new Map();
    if (r.status !== undefined) throw this.#error(`listing ${this.locationOf(backup)}`, r);
    return parseLsTree(r.lines, top);
  }

  /** A stored file's size; ENOENT when missing, an error when it is a folder. */
  async #size(s: SmbSession, backup: string, file: string): Promise<number> {
    const remote = this.#remote(backup, file);
    const r = await s.run(`allinfo ${quoted(remote)}`);
    if (isNotFound(r.status)) throw notFound(this.locationOf(backup, file), r.status as string);
    if (r.status !== undefined) throw this.#error(`reading ${this.locationOf(backup, file)}`, r);
    const info = parseAllinfo(r.lines);
    if (info.dir || info.size === undefined) {
      throw new BschedError("IO", `${this.locationOf(backup, file)}: not a regular file`, {
        hint: "the backup on the share was changed by hand: verify it",
      });
    }
    return info.size;
  }

  async open(backup: string, file: string): Promise<ReadHandle> {
    const size = await this.#pool.use((s) => this.#size(s, backup, file));
    return new SmbReadHandle(
      this.#pool,
      this.#remote(backup, file),
      size,
      this.locationOf(backup, file),
      this.#readsDir(),
    );
  }

  #readsDir(): string {
    return path.join(scratchOf(this.#spec), "reads");
  }

  async readSmall(backup: string, file: string, max: number): Promise<Buffer | undefined> {
    // The size first, through `use` (which replaces a session whose connection died idle).
    const size = await this.#pool.use((s) => this.#size(s, backup, file));
    if (size > max) return undefined;
    const s = await this.#pool.acquire();
    let released = false;
    const release = () => {
      if (!released) this.#pool.release(s);
      released = true;
    };
    try {
      const parts: Buffer[] = [];
      for await (const c of s.download(
        this.#remote(backup, file),
        size,
        this.locationOf(backup, file),
        release,
      )) {
        parts.push(c as Buffer);
      }
      return Buffer.concat(parts);
    } finally {
      release();
    }
  }

  async stage(backup: string): Promise<Staging> {
    const temp = tempName(backup);
    const local = path.join(scratchOf(this.#spec), temp);
    await this.#pool.use((s) =>
      s.must(`mkdir ${quoted(this.#remote(temp))}`, `making ${this.locationOf(temp)}`),
    );
    await fs.mkdir(local, { recursive: true, mode: 0o700 });
    return stagingOnShare({
      pool: this.#pool,
      local,
      backup,
      remoteOf: (...parts) => this.#remote(temp, ...parts),
      final: this.#remote(backup),
      temp: this.#remote(temp),
      show: (file) => this.locationOf(temp, file),
      error: (doing, r) => this.#error(doing, r),
    });
  }

  /** Remove a folder and everything in it; a missing one is fine. */
  async #deltree(name: string): Promise<void> {
    const remote = this.#remote(name);
    await this.#pool.use(async (s) => {
      const r = await s.run(`deltree ${quoted(remote)}`);
      if (r.status !== undefined && !isNotFound(r.status))
        throw this.#error(`removing ${this.locationOf(name)}`, r);
    });
  }

  async remove(backup: string): Promise<void> {
    const doomed = deletingName(backup);
    await this.#pool.use(async (s) => {
      const r = await s.run(`rename ${quoted(this.#remote(backup))} ${quoted(this.#remote(doomed))}`);
      if (isNotFound(r.status)) throw notFound(this.locationOf(backup), r.status as string);
      if (r.status !== undefined) throw this.#error(`removing ${this.locationOf(backup)}`, r);
    });
    await this.#deltree(doomed);
  }

  async removeLeftovers(letter: string): Promise<string[]> {
    const removed: string[] = [];
    for (const n of await this.names()) {
      const base = parseTempName(n)?.base ?? parseDeletingName(n);
      if (base !== undefined && isBackupName(base, letter)) {
        await this.#deltree(n);
        removed.push(n);
      }
    }
    return removed;
  }

  async removeOwnLeftovers(pid: number): Promise<string[]> {
    const removed: string[] = [];
    for (const e of await this.#list()) {
      const t = parseTempName(e.name);
      if (t && t.pid === pid && (isBackupName(t.base) || isRunLockName(t.base))) {
        if (e.dir) await this.#deltree(e.name);
        else await this.#lockFiles().remove(e.name);
        removed.push(this.locationOf(e.name));
      } else if (isRunLockName(e.name)) {
        const owner = await this.#lockFiles()
          .read(e.name)
          .then((t) => (t === undefined ? undefined : (JSON.parse(t).pid as number)))
          .catch(() => undefined);
        if (owner === pid) {
          await this.#lockFiles().remove(e.name);
          removed.push(this.locationOf(e.name));
        }
      }
    }
    // Downloads of reads and uploads that never finished, in the local scratch folder.
    const scratch = scratchOf(this.#spec);
    for (const n of await fs.readdir(scratch).catch(() => [] as string[])) {
      if (parseTempName(n)?.pid === pid) await fs.rm(path.join(scratch, n), { recursive: true, force: true });
    }
    return removed;
  }

  /** The lock's file operations, on names at the destination's top. */
  #lockFiles(): LockFiles {
    const at = (name: string) => this.#remote(name);
    const pool = this.#pool;
    const err = (doing: string, r: { status: string | undefined; lines: string[] }) => this.#error(doing, r);
    const upload = async (s: SmbSession, name: string, text: string) => {
      const body = Buffer.from(text);
      await s.upload(at(name), Readable.from([body]), body.length, this.locationOf(name));
    };
    return {
      show: (name) => this.locationOf(name),
      createExclusive: (name, text) =>
        pool.use(async (s) => {
          const temp = tempName(name);
          await upload(s, temp, text);
          const r = await s.run(`rename ${quoted(at(temp))} ${quoted(at(name))}`);
          if (r.status === undefined) return true;
          await s.run(`del ${quoted(at(temp))}`);
          if (r.status === "NT_STATUS_OBJECT_NAME_COLLISION") return false;
          throw err(`taking the lock ${this.locationOf(name)}`, r);
        }),
      replace: (name, text) =>
        pool.use(async (s) => {
          const temp = tempName(name);
          await upload(s, temp, text);
          await s.must(
            `rename ${quoted(at(temp))} ${quoted(at(name))} -f`,
            `renewing the lock ${this.locationOf(name)}`,
          );
        }),
      read: (name) =>
        this.readSmall("", name, 64 * 1024).then(
          (b) => b?.toString("utf8"),
          (e: unknown) => {
            if ((e as { code?: string }).code === "ENOENT") return undefined;
            throw e;
          },
        ),
      rename: (from, to) =>
        pool.use(async (s) => {
          const r = await s.run(`rename ${quoted(at(from))} ${quoted(at(to))}`);
          if (isNotFound(r.status)) return false;
          if (r.status !== undefined) throw err(`moving the lock ${this.locationOf(from)}`, r);
          return true;
        }),
      remove: (name) =>
        pool.use(async (s) => {
          const r = await s.run(`del ${quoted(at(name))}`);
          if (r.status !== undefined && !isNotFound(r.status))
            throw err(`removing ${this.locationOf(name)}`, r);
        }),
    };
  }

  async lock(setId: string, purpose: string, clock: Clock): Promise<Lease> {
    const file = runLockName(setId);
    return acquireSmbLock(this.#lockFiles(), file, () => staleLockName(file), purpose, clock);
  }

  async space(): Promise<{ free: number; blockSize: number } | undefined> {
    // A listing ends with the share's disk-free line; listing the folder itself is one entry.
    const r = await this.#pool.use((s) => s.run(`ls ${quoted(this.#base === "" ? "\\*" : this.#remote())}`));
    if (r.status !== undefined) throw this.#error("reading the free space", r);
    return parseDiskFree(r.lines);
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}

/** `mkdir`, a folder already there being fine. */
export async function mkdirIfMissing(
  s: SmbSession,
  remote: string,
  error: (r: { status: string | undefined; lines: string[] }) => Error,
): Promise<void> {
  const r = await s.run(`mkdir ${quoted(remote)}`);
  if (r.status !== undefined && r.status !== "NT_STATUS_OBJECT_NAME_COLLISION") throw error(r);
}

/**
 * A stored file opened for reading. smbclient has no ranged get: a stream of the whole file pipes
 * `get` through the FIFO; positioned reads and ranges download the file once per handle into the
 * local scratch folder (`<state>/scratch/<dest>/reads`, as much disk as the file) and read it
 * there; close removes it.
 */
class SmbReadHandle implements ReadHandle {
  readonly size: number;
  readonly #pool: SessionPool;
  readonly #remote: string;
  readonly #where: string;
  readonly #dir: string;
  #local: Promise<fs.FileHandle> | undefined;
  #file: string | undefined;

  constructor(pool: SessionPool, remote: string, size: number, where: string, dir: string) {
    this.#pool = pool;
    this.#remote = remote;
    this.size = size;
    this.#where = where;
    this.#dir = dir;
  }

  #copy(): Promise<fs.FileHandle> {
    this.#local ??= (async () => {
      await fs.mkdir(this.#dir, { recursive: true, mode: 0o700 });
      const file = path.join(this.#dir, tempName("read"));
      this.#file = file;
      await this.#pool.use((s) => s.downloadTo(this.#remote, file, `reading ${this.#where}`));
      const fh = await fs.open(file, "r");
      const { size } = await fh.stat();
      if (size !== this.size) {
        await fh.close();
        throw new BschedError("IO", `${this.#where}: ${size} bytes read, ${this.size} expected`, {
          hint: "the file changed on the share while it was read: read it again",
        });
      }
      return fh;
    })();
    return this.#local;
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    const fh = await this.#copy();
    return (await fh.read(buffer, offset, length, position)).bytesRead;
  }

  stream(opts: { start?: number; end?: number; highWaterMark?: number } = {}): Readable {
    const start = opts.start ?? 0;
    const end = opts.end ?? this.size - 1;
    if (start === 0 && end >= this.size - 1 && this.#local === undefined) return this.#whole();
    return rangeStream(() => this.#copy(), { start, end, highWaterMark: opts.highWaterMark ?? 1 << 20 });
  }

  #whole(): Readable {
    const out = new PassThrough();
    this.#pool.acquire().then(
      (s) => {
        let released = false;
        const release = () => {
          if (!released) this.#pool.release(s);
          released = true;
        };
        const src = s.download(this.#remote, this.size, this.#where, release);
        src.on("error", (e) => out.destroy(e));
        out.on("close", () => {
          if (!src.destroyed && !src.readableEnded) src.destroy();
          if (src.readableEnded) release();
        });
        src.pipe(out);
      },
      (e: unknown) => out.destroy(e as Error),
    );
    return out;
  }

  async close(): Promise<void> {
    const local = this.#local;
    this.#local = undefined;
    if (local) await (await local.catch(() => undefined))?.close();
    if (this.#file) await fs.rm(this.#file, { force: true });
  }
}
