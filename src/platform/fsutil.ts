import { spawn } from "node:child_process";
import { constants as C, closeSync, fstatSync, lstatSync, openSync, readSync, type Stats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { BschedError, errnoCode } from "../core/errors.ts";
import { tempName } from "./names.ts";

/** fsync a folder so that entries created or renamed in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export { tempName } from "./names.ts";

/**
 * Write a file under a temporary name, fsync it, and move it into place, so that readers see
 * the old content or the new, never a part. With `exclusive`, an existing file is never
 * replaced (the final step is link(), which fails on an existing name).
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: { exclusive?: boolean; mode?: number } = {},
): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, tempName(path.basename(file)));
  const fh = await fs.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, options.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    if (options.exclusive) {
      try {
        await fs.link(tmp, file);
      } catch (e) {
        if (errnoCode(e) === "EEXIST") {
          throw new BschedError("IO", `refusing to overwrite existing file ${file}`, { cause: e });
        }
        throw e;
      }
      await fs.unlink(tmp);
    } else {
      await fs.rename(tmp, file);
    }
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

export async function pathExists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return false;
    throw e;
  }
}

/**
 * Make everything written under `dir` durable. `sync -f` (syncfs) flushes the whole file system
 * in one call, far cheaper than an fsync per file and folder; where it is missing, fall back to
 * fsyncing every file and folder of the tree.
 */
export async function syncTree(dir: string): Promise<void> {
  const ok = await new Promise<boolean>((resolve) => {
    const p = spawn("sync", ["-f", dir], { stdio: "ignore" });
    p.on("error", () => resolve(false));
    p.on("exit", (code) => resolve(code === 0));
  });
  if (ok) return;
  const walk = async (d: string): Promise<void> => {
    for (const ent of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) {
        const fh = await fs.open(p, C.O_RDONLY);
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
    }
    await fsyncDir(d);
  };
  await walk(dir);
}

/** Run `fn` over `items` with at most `limit` in flight; the first error stops new work and is thrown. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

/**
 * The path of `rel` (a checked relative path) under `root`, refusing a symlink (or anything but a
 * folder) at any folder step: backup folders are untrusted input, and a folder swapped for a link
 * would make a restore or verify read from elsewhere. `realDirs` remembers folders already
 * checked. `root` itself is not checked (it may be a link an administrator made); the last step
 * is the caller's to open with `openRegular`.
 */
export function beneath(root: string, rel: string, realDirs: Set<string>): string {
  let dir = root;
  for (const part of rel.split("/").slice(0, -1)) {
    dir = path.join(dir, part);
    if (realDirs.has(dir)) continue;
    const st = lstatSync(dir);
    if (!st.isDirectory()) throw notRegular(dir, st, "folder");
    realDirs.add(dir);
  }
  return path.join(root, rel);
}

/** What stands at a path, in words, for an error message. */
function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return "a symlink";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isDirectory()) return "a folder";
  return st.isFile() ? "a regular file" : "a special file";
}

function notRegular(file: string, st: Stats, wanted: "folder" | "regular file") {
  return new BschedError(
    "UNSAFE_PATH",
    `${file} is ${kindOf(st)}, not a ${wanted}: refusing to read through it (a backup's content is read only from regular files inside its folder)`,
    { hint: "the backup folder was altered; run `bsched verify` and restore from another backup" },
  );
}

/** Flags for reading a backup's file: never through a link, never blocking on a FIFO. */
export const READ_REGULAR = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;

/**
 * Open a file of a backup folder for reading, or throw UNSAFE_PATH naming it: only a regular file,
 * never through a symlink (O_NOFOLLOW), and never waiting on a FIFO (O_NONBLOCK; lstat first so
 * a device or FIFO is not even opened, fstat after so nothing swapped in between is read).
 * A missing file throws ENOENT as usual.
 */
export function openRegularSync(file: string): number {
  const before = lstatSync(file);
  if (!before.isFile()) throw notRegular(file, before, "regular file");
  let fd: number;
  try {
    fd = openSync(file, READ_REGULAR);
  } catch (e) {
    if (errnoCode(e) === "ELOOP" || errnoCode(e) === "ENXIO")
      throw notRegular(file, lstatSync(file), "regular file");
    throw e;
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw notRegular(file, st, "regular file");
  }
  return fd;
}

/**
 * The whole content of a regular file of a backup folder (see `openRegularSync`) when it holds at
 * most `max` bytes; undefined when it is larger (the caller then streams it with `openRegular`).
 */
export function readRegularSmallSync(file: string, max: number): Buffer | undefined {
  const fd = openRegularSync(file);
  try {
    const size = fstatSync(fd).size;
    if (size > max) return undefined;
    // One byte more than its size: a file that grew while read takes the stream instead.
    const buf = Buffer.allocUnsafe(size + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, n);
      n += r;
      if (r === 0 || n === buf.length) break;
    }
    return n > size ? undefined : buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** `openRegularSync` with a file handle. */
export async function openRegular(file: string): Promise<fs.FileHandle> {
  const before = await fs.lstat(file);
  if (!before.isFile()) throw notRegular(file, before, "regular file");
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, READ_REGULAR);
  } catch (e) {
    if (errnoCode(e) === "ELOOP" || errnoCode(e) === "ENXIO")
      throw notRegular(file, await fs.lstat(file), "regular file");
    throw e;
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw notRegular(file, st, "regular file");
  }
  return fh;
}

/** The whole content of a regular file of a backup folder (see `openRegular`). */
export async function readRegular(file: string): Promise<Buffer> {
  const fh = await openRegular(file);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
