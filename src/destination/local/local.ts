import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BschedError, errnoCode } from "../../core/errors.ts";
import type { Clock } from "../../platform/clock.ts";
import {
  beneath,
  fsyncDir,
  openRegular,
  pathExists,
  readRegularSmallSync,
  syncTree,
  writeFileAtomic,
} from "../../platform/fsutil.ts";
import { acquireLock } from "../../platform/lockfile.ts";
import {
  deletingName,
  isRunLockName,
  parseDeletingName,
  parseTempName,
  runLockName,
  tempName,
} from "../../platform/names.ts";
import { freeBytes, fromOsError } from "../../platform/os-errors.ts";
import { rangeStream } from "../../platform/range-stream.ts";
import { MANIFEST_FILE } from "../../snapshot/manifest.ts";
import { isBackupName } from "../../snapshot/naming.ts";
import type { Destination, Lease, ReadHandle, Staging } from "../destination.ts";
import { exactly } from "../exact-size.ts";
import { ensureBackupFolder } from "./folder.ts";
import { LoneFileDestination } from "./lone-file.ts";

export interface LocalOptions {
  /** The folder that must already exist (the folder's parent, or the server root): see ensureBackupFolder. */
  anchor?: string;
  /** The set it serves and the config key naming the folder, for messages. */
  set?: string;
  key?: string;
  /** Its name in the config; default `folder`. */
  name?: string;
}

/**
 * A backup folder on a mounted file system. Backups are published by rename (atomic on one file
 * system) after everything was fsynced and the manifest written last; every file is read only as
 * a regular file reached through no link below the folder (the folder itself may be a link an
 * administrator made).
 */
export class LocalDestination implements Destination {
  readonly name: string;
  readonly where: string;
  readonly #opts: LocalOptions;
  /** Folders under backups already checked to be real folders (beneath()). */
  readonly #realDirs = new Set<string>();

  constructor(folder: string, opts: LocalOptions = {}) {
    this.where = folder;
    this.name = opts.name ?? "folder";
    this.#opts = opts;
  }

  locationOf(backup: string, file?: string): string {
    return file === undefined ? path.join(this.where, backup) : path.join(this.where, backup, file);
  }

  #file(backup: string, file: string): string {
    return beneath(path.join(this.where, backup), file, this.#realDirs);
  }

  async ready(): Promise<void> {
    const set = this.#opts.set ?? "?";
    await ensureBackupFolder(this.where, this.#opts.anchor ?? path.dirname(this.where), {
      set,
      key: this.#opts.key ?? `sets.${set}.folder`,
    });
  }

  async names(): Promise<string[]> {
    try {
      return await fs.readdir(this.where);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return [];
      throw e;
    }
  }

  async topFiles(backup: string): Promise<{ name: string; size: number }[]> {
    const dir = path.join(this.where, backup);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") return [];
      throw e;
    }
    const out: { name: string; size: number }[] = [];
    for (const name of names) {
      const st = await fs.lstat(path.join(dir, name)).catch(() => undefined);
      if (st?.isFile()) out.push({ name, size: st.size });
    }
    return out;
  }

  async open(backup: string, file: string): Promise<ReadHandle> {
    const fh = await openRegular(this.#file(backup, file));
    const { size } = await fh.stat();
    return {
      size,
      read: async (buffer, offset, length, position) =>
        (await fh.read(buffer, offset, length, position)).bytesRead,
      stream: (opts = {}) => rangeStream(() => Promise.resolve(fh), opts),
      close: () => fh.close(),
    };
  }

  async readSmall(backup: string, file: string, max: number): Promise<Buffer | undefined> {
    return readRegularSmallSync(this.#file(backup, file), max);
  }

  async stage(backup: string): Promise<Staging> {
    const folder = this.where;
    const dir = path.join(folder, tempName(backup));
    await fs.mkdir(dir);
    let done = false;
    const realDirs = new Set<string>();
    return {
      dir,
      async put(file: string, body: Readable, size: number) {
        const target = path.join(dir, file);
        await fs.mkdir(path.dirname(target), { recursive: true });
        // Made above, but checked all the same: nothing is written through a link.
        beneath(dir, file, realDirs);
        await pipeline(body, exactly(size, target), createWriteStream(target, { flags: "wx" }));
      },
      async publish(manifestText: string) {
        await syncTree(dir);
        await writeFileAtomic(path.join(dir, MANIFEST_FILE), manifestText);
        const final = path.join(folder, backup);
        if (await pathExists(final)) {
          throw new BschedError("IO", `backup folder ${final} appeared during the run`, {
            hint: "run the backup again",
          });
        }
        await fs.rename(dir, final);
        done = true;
        await fsyncDir(folder);
      },
      async abort() {
        if (done) return;
        done = true;
        await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      },
    };
  }

  /**
   * A crash at any point never leaves something that looks like a backup: the folder is first
   * renamed to a hidden `.<name>.deleting-…` (one atomic step), then removed.
   */
  async remove(backup: string): Promise<void> {
    const doomed = path.join(this.where, deletingName(backup));
    await fs.rename(path.join(this.where, backup), doomed);
    await fsyncDir(this.where);
    await fs.rm(doomed, { recursive: true, force: true });
  }

  async removeLeftovers(letter: string): Promise<string[]> {
    const removed: string[] = [];
    for (const n of await this.names()) {
      const base = parseTempName(n)?.base ?? parseDeletingName(n);
      if (base !== undefined && isBackupName(base, letter)) {
        await fs.rm(path.join(this.where, n), { recursive: true, force: true });
        removed.push(n);
      }
    }
    return removed;
  }

  async lock(setId: string, purpose: string, clock: Clock): Promise<Lease> {
    return acquireLock(path.join(this.where, runLockName(setId)), purpose, clock).catch((e: unknown) => {
      throw fromOsError(e, { path: this.where, doing: purpose });
    });
  }

  async loneFile(backup: string): Promise<Destination | undefined> {
    // `<name>.sh`: the layout every destination shares (selfExtractingName in src/format/compressed/names.ts).
    const file = path.join(this.where, `${backup}.sh`);
    const st = await fs.stat(file).catch(() => undefined);
    // The file found may be a link an administrator made (as a backup folder may be): it is read
    // at its real path, where nothing is followed any more.
    return st?.isFile() ? new LoneFileDestination(await fs.realpath(file)) : undefined;
  }

  async removeOwnLeftovers(pid: number): Promise<string[]> {
    const removed: string[] = [];
    const names = await fs.readdir(this.where).catch(() => [] as string[]);
    for (const n of names) {
      const t = parseTempName(n);
      if (t && isBackupName(t.base) && t.pid === pid) {
        await fs.rm(path.join(this.where, n), { recursive: true, force: true });
        removed.push(path.join(this.where, n));
      }
      if (isRunLockName(n)) {
        const file = path.join(this.where, n);
        const owner = await fs
          .readFile(file, "utf8")
          .then((t) => JSON.parse(t).pid as number)
          .catch(() => undefined);
        if (owner === pid) {
          await fs.rm(file, { force: true });
          removed.push(file);
        }
      }
    }
    return removed;
  }

  async device(): Promise<number | undefined> {
    return (await fs.stat(this.where).catch(() => undefined))?.dev;
  }

  async createdNs(backup: string): Promise<bigint | undefined> {
    const born = (await fs.stat(path.join(this.where, backup), { bigint: true })).birthtimeNs;
    return born > 0n ? born : undefined;
  }

  async space(): Promise<{ free: number; blockSize: number } | undefined> {
    const free = freeBytes(this.where);
    if (free === undefined) return undefined;
    const blockSize = await fs.statfs(this.where).then(
      (s) => s.bsize || 4096,
      () => 4096,
    );
    return { free, blockSize };
  }
}
