import { createReadStream } from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DEFAULT_TRANSFERS, whereOf } from "../../config/destinations.ts";
import type { DestinationSpec } from "../../config/load.ts";
import { BschedError } from "../../core/errors.ts";
import { inParallel } from "../../core/parallel.ts";
import type { Clock } from "../../platform/clock.ts";
import { hostName } from "../../platform/host.ts";
import {
  deletingName,
  isRunLockName,
  parseDeletingName,
  parseTempName,
  runLockName,
  tempName,
} from "../../platform/names.ts";
import { resolveSecret } from "../../secrets/secrets.ts";
import { MANIFEST_FILE } from "../../snapshot/manifest.ts";
import { isBackupName } from "../../snapshot/naming.ts";
import type { Destination, Lease, ReadHandle, Staging } from "../destination.ts";
import { exactly } from "../exact-size.ts";
import { scratchOf } from "../open.ts";
import { ServerDigests } from "./digest.ts";
import { diskFullError, remoteRange, remoteWriter } from "./io.ts";
import { remoteLock } from "./lock.ts";
import { RemoteFs, type RemoteHandle } from "./remote.ts";
import { SftpSession } from "./session.ts";

type SftpConfig = Extract<DestinationSpec["config"], { type: "sftp" }>;

/** Files uploaded at once by publish: small files are a matter of round trips, large ones of the window. */
const UPLOADS = 4;

const isMissing = (e: unknown) => (e as { code?: string }).code === "ENOENT";

/** The `sftp` destination of a `destinations:` entry; nothing connects before its first use. */
export function openSftp(spec: DestinationSpec): Destination {
  if (spec.config.type !== "sftp") throw new Error(`destination ${spec.name}: not an sftp destination`);
  return new SftpDestination(spec, spec.config);
}

/**
 * Backups in a folder of an SFTP server, laid out exactly as in a local folder (docs/design.md
 * "SFTP"). A backup is staged in a temporary folder at the top (`.<name>.tmp-PID-HEX`), with the
 * writers' output first written to a local scratch folder and uploaded by publish, the manifest
 * last, then renamed to its name in one step (SFTP's rename, which never replaces). Removal
 * renames aside first. The server's host key is pinned (src/destination/sftp/session.ts).
 */
export class SftpDestination implements Destination {
  readonly name: string;
  readonly where: string;
  readonly #fs: RemoteFs;
  readonly #root: string;
  readonly #scratch: string;
  /** Folders under the root already seen to be real folders (never a link): open() reads through them. */
  readonly #realDirs = new Set<string>();
  readonly #digests: ServerDigests;
  /**
   * The connections a copy's puts go through, `transfers` at most (rclone's: one SSH connection
   * per transfer): one channel's window (2 MiB) is shared by every file on it, so several files on
   * one connection only queue their requests in ssh2's buffers. The first lane is the session of
   * everything else; the others connect at their first put and end with close().
   */
  readonly #lanes: RemoteFs[];
  readonly #freeLanes: RemoteFs[] = [];
  readonly #laneWaiters: ((fs: RemoteFs) => void)[] = [];
  readonly #maxLanes: number;
  readonly #newLane: () => RemoteFs;

  constructor(spec: DestinationSpec, c: SftpConfig) {
    this.name = spec.name;
    this.where = whereOf(c);
    this.#root = c.path;
    this.#scratch = scratchOf(spec);
    const key = (k: string) => `destinations.${spec.name}.${k}`;
    const newSession = () =>
      new SftpSession({
        name: spec.name,
        host: c.host,
        port: c.port,
        user: c.user,
        hostKey: c.hostKey,
        ...(c.privateKey === undefined ? {} : { privateKeyFile: c.privateKey }),
        ...(c.passphrase === undefined
          ? {}
          : { passphrase: () => resolveSecret(c.passphrase as string, spec.state, key("passphrase")) }),
        ...(c.password === undefined
          ? {}
          : { password: () => resolveSecret(c.password as string, spec.state, key("password")) }),
      });
    this.#newLane = () => new RemoteFs(newSession(), spec.name, c.user);
    this.#fs = this.#newLane();
    this.#digests = new ServerDigests(this.#fs);
    this.#lanes = [this.#fs];
    this.#freeLanes.push(this.#fs);
    this.#maxLanes = c.transfers ?? DEFAULT_TRANSFERS;
  }

  /** A connection for one put (see #lanes): a free one, a new one up to the most, or the next freed. */
  async #takeLane(): Promise<RemoteFs> {
    const free = this.#freeLanes.pop();
    if (free) return free;
    if (this.#lanes.length < this.#maxLanes) {
      const lane = this.#newLane();
      this.#lanes.push(lane);
      return lane;
    }
    return new Promise((resolve) => this.#laneWaiters.push(resolve));
  }

  #giveLane(lane: RemoteFs): void {
    const next = this.#laneWaiters.shift();
    if (next) next(lane);
    else this.#freeLanes.push(lane);
  }

  locationOf(backup: string, file?: string): string {
    return file === undefined ? `${this.where}/${backup}` : `${this.where}/${backup}/${file}`;
  }

  #at(...parts: string[]): string {
    return path.posix.join(this.#root, ...parts);
  }

  /** `file` inside the backup, or UNSAFE_PATH: names are checked upstream, and again here. */
  #inside(backup: string, file: string): string {
    const parts = file.split("/");
    if (
      !isBackupName(backup) ||
      file.startsWith("/") ||
      parts.some((p) => p === "" || p === "." || p === "..")
    ) {
      throw new BschedError("UNSAFE_PATH", `${this.locationOf(backup, file)}: not a path inside the backup`, {
        hint: "the backup's manifest was altered; run `bsched verify`",
      });
    }
    return this.#at(backup, file);
  }

  async ready(): Promise<void> {
    await this.#fs.mkdirp(this.#root);
  }

  async names(): Promise<string[]> {
    try {
      return (await this.#fs.readdir(this.#root))
        .map((e) => e.filename)
        .filter((n) => n !== "." && n !== "..");
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }

  async topFiles(backup: string): Promise<{ name: string; size: number }[]> {
    let entries: Awaited<ReturnType<RemoteFs["readdir"]>>;
    try {
      entries = await this.#fs.readdir(this.#at(backup));
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
    return entries.filter((e) => e.attrs.isFile()).map((e) => ({ name: e.filename, size: e.attrs.size }));
  }

  /** Open a regular file of a backup reached through real folders only (no link on the server is followed). */
  async #openRegular(backup: string, file: string): Promise<{ f: RemoteHandle; size: number }> {
    const p = this.#inside(backup, file);
    const dirs = file.split("/").slice(0, -1);
    let dir = this.#at(backup);
    for (const d of ["", ...dirs]) {
      dir = d === "" ? dir : path.posix.join(dir, d);
      if (this.#realDirs.has(dir)) continue;
      const st = await this.#fs.lstat(dir);
      if (!st.isDirectory()) throw this.#notRegular(dir, "folder");
      this.#realDirs.add(dir);
    }
    const st = await this.#fs.lstat(p);
    if (!st.isFile()) throw this.#notRegular(p, "regular file");
    const f = await this.#fs.open(p, "r", "opening");
    return { f, size: st.size };
  }

  #notRegular(p: string, wanted: string): BschedError {
    return new BschedError(
      "UNSAFE_PATH",
      `${this.where}: ${p} on the server is not a ${wanted}: refusing to read through it (a backup's content is read only from regular files inside its folder)`,
      { hint: "the backup folder was altered; run `bsched verify` and restore from another backup" },
    );
  }

  async open(backup: string, file: string): Promise<ReadHandle> {
    const fs = this.#fs;
    const { f, size } = await this.#openRegular(backup, file);
    return {
      size,
      read: (buffer, offset, length, position) => fs.read(f, buffer, offset, length, position),
      stream: (opts = {}) => remoteRange(fs, f, size, opts),
      close: () => fs.closeHandle(f).catch(() => undefined),
    };
  }

  async readSmall(backup: string, file: string, max: number): Promise<Buffer | undefined> {
    const { f, size } = await this.#openRegular(backup, file);
    try {
      if (size > max) return undefined;
      const out = Buffer.alloc(size);
      let at = 0;
      while (at < size) {
        const n = await this.#fs.read(f, out, at, size - at, at);
        if (n === 0) break;
        at += n;
      }
      return out.subarray(0, at);
    } finally {
      await this.#fs.closeHandle(f).catch(() => undefined);
    }
  }

  /** `sha256sum` run by the server (digest.ts): one command for the whole backup, at the first file asked. */
  async storedDigest(backup: string, file: string, signal?: AbortSignal): Promise<string | undefined> {
    this.#inside(backup, file);
    return this.#digests.of(this.#at(backup), file, signal);
  }

  async stage(backup: string): Promise<Staging> {
    this.#digests.forget();
    const fs = this.#fs;
    const tmp = tempName(backup);
    const remote = this.#at(tmp);
    await fs.mkdir(remote).catch(async (e: unknown) => {
      if (!isMissing(e)) throw e;
      await this.ready();
      await fs.mkdir(remote);
    });
    const dir = path.join(this.#scratch, tmp);
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const made = new Set<string>([remote]);
    const mkdirs = async (folder: string, via = fs) => {
      if (made.has(folder)) return;
      await mkdirs(path.posix.dirname(folder), via);
      await via.mkdir(folder).catch(async (e: unknown) => {
        if (!(await via.lstat(folder).catch(() => undefined))?.isDirectory()) throw e;
      });
      made.add(folder);
    };
    const onFull = () => diskFullError(fs, this.#root, this.name, this.where);
    /**
     * Files sent whose last writes, sync and close are still under way (remoteWriter deferSync):
     * publish waits for them before the manifest, and the first failure fails the next put or
     * the publish; the next file does not wait for them.
     */
    const syncing = new Set<Promise<void>>();
    let failure: { e: unknown } | undefined;
    const deferSync = (p: Promise<void>) => {
      syncing.add(p);
      p.then(
        () => syncing.delete(p),
        (e: unknown) => {
          failure ??= { e };
        },
      );
    };
    /** Until every file sent is synced and closed; the first failure, if any, thrown. */
    const settled = async () => {
      await Promise.allSettled([...syncing]);
      if (failure) throw failure.e;
    };
    /** Stream `body` into a new file of the staging area: exactly `size` bytes, synced on the server by publish. */
    const upload = async (file: string, body: () => Readable, size: number, via = fs) => {
      const target = path.posix.join(remote, file);
      await mkdirs(path.posix.dirname(target), via);
      const f = await via.open(target, "wx", "creating");
      await pipeline(
        body(),
        exactly(size, this.locationOf(backup, file)),
        remoteWriter(via, f, onFull, deferSync),
      );
    };
    let done = false;
    const final = this.#at(backup);
    return {
      dir,
      put: async (file, body, size) => {
        // Nothing may flow before the pipeline below is in place (a caller counting bytes with a
        // 'data' listener set the stream flowing): the round trips before it would lose bytes.
        body.pause();
        this.#inside(backup, file);
        if (file === MANIFEST_FILE) throw new Error("the manifest is written by publish");
        if (failure) throw failure.e;
        // Its own connection while it sends (its sync and close follow on it, awaited by publish).
        const lane = await this.#takeLane();
        try {
          await upload(file, () => body, size, lane);
        } finally {
          this.#giveLane(lane);
        }
      },
      publish: async (manifestText) => {
        if (done) throw new BschedError("IO", `${this.locationOf(backup)}: already published or aborted`);
        // What the writers wrote locally, then the manifest last: a backup without it is never listed.
        const files: { rel: string; size: number }[] = [];
        await walk(dir, "", async (rel, isDir, size) => {
          if (isDir) await mkdirs(path.posix.join(remote, rel));
          else files.push({ rel, size });
        });
        await inParallel(files, UPLOADS, (x) =>
          // Opened only once the remote file is: a failure before leaves no local file open.
          upload(x.rel, () => createReadStream(path.join(dir, ...x.rel.split("/"))), x.size),
        );
        // Every file whole, synced and closed before the manifest makes them a backup.
        await settled();
        await fs.writeFile(path.posix.join(remote, MANIFEST_FILE), Buffer.from(manifestText), "wx", {
          fsync: true,
        });
        if (await fs.exists(final)) {
          throw new BschedError("IO", `backup folder ${this.locationOf(backup)} appeared during the run`, {
            hint: "run the backup again",
          });
        }
        await fs.rename(remote, final);
        done = true;
        await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      },
      abort: async () => {
        if (done) return;
        done = true;
        await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
        await Promise.allSettled([...syncing]);
        // The server down: what is left there is a leftover removeLeftovers takes later.
        await fs.rmTree(remote).catch(() => undefined);
      },
    };
  }

  /** Renamed aside first (one step: never listed half-removed), then deleted. */
  async remove(backup: string): Promise<void> {
    this.#digests.forget();
    const doomed = this.#at(deletingName(backup));
    await this.#fs.rename(this.#at(backup), doomed);
    await this.#fs.rmTree(doomed);
  }

  async removeLeftovers(letter: string): Promise<string[]> {
    const removed: string[] = [];
    for (const n of await this.names()) {
      const base = parseTempName(n)?.base ?? parseDeletingName(n);
      if (base !== undefined && isBackupName(base, letter)) {
        await this.#fs.rmTree(this.#at(n));
        removed.push(n);
      }
    }
    // The local scratch of those runs too (not listed: it is no name at the destination's top).
    for (const n of await fsp.readdir(this.#scratch).catch(() => [] as string[])) {
      const base = parseTempName(n)?.base;
      if (base !== undefined && isBackupName(base, letter)) {
        await fsp.rm(path.join(this.#scratch, n), { recursive: true, force: true });
      }
    }
    return removed;
  }

  async removeOwnLeftovers(pid: number): Promise<string[]> {
    const removed: string[] = [];
    for (const n of await this.names().catch(() => [] as string[])) {
      const t = parseTempName(n);
      if (t && isBackupName(t.base) && t.pid === pid) {
        await this.#fs.rmTree(this.#at(n));
        removed.push(this.locationOf(n));
      }
      if (isRunLockName(n)) {
        const owner = await this.#fs
          .readFile(this.#at(n), 64 * 1024)
          .then((b) => JSON.parse(b.toString("utf8")) as { pid?: number; host?: string })
          .catch(() => undefined);
        // A shared server: another machine's process may have the same pid.
        if (owner?.pid === pid && owner.host === hostName()) {
          await this.#fs.unlink(this.#at(n)).catch(() => undefined);
          removed.push(this.locationOf(n));
        }
      }
    }
    for (const n of await fsp.readdir(this.#scratch).catch(() => [] as string[])) {
      if (parseTempName(n)?.pid === pid)
        await fsp.rm(path.join(this.#scratch, n), { recursive: true, force: true });
    }
    return removed;
  }

  async lock(setId: string, purpose: string, clock: Clock): Promise<Lease> {
    const file = this.#at(runLockName(setId));
    return remoteLock(this.#fs, file, purpose, clock).catch(async (e: unknown) => {
      if (!isMissing(e)) throw e;
      await this.ready();
      return remoteLock(this.#fs, file, purpose, clock);
    });
  }

  async space(): Promise<{ free: number; blockSize: number } | undefined> {
    return this.#fs.space(this.#root).catch((e: unknown) => {
      if (isMissing(e)) return undefined;
      throw e;
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#lanes.map((l) => l.session.close()));
  }
}

/** Every folder and regular file under `dir` (relative, `/`-separated), parents before children. */
async function walk(
  dir: string,
  rel: string,
  visit: (rel: string, isDir: boolean, size: number) => Promise<void>,
): Promise<void> {
  for (const e of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel === "" ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) {
      await visit(r, true, 0);
      await walk(dir, r, visit);
    } else if (e.isFile()) {
      const st = await fsp.stat(path.join(dir, r));
      await visit(r, false, st.size);
    }
  }
}
