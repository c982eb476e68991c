import { createHash } from "node:crypto";
import {
  type BigIntStats,
  constants as C,
  closeSync,
  fchmodSync,
  futimesSync,
  openSync,
  writeSync,
} from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Entry } from "../../core/types.ts";
import { copyAndHash, holeSink, SPARSE_MIN } from "../../platform/copy.ts";
import { forEachLimit } from "../../platform/fsutil.ts";
import { utimesArg } from "../../platform/times.ts";
import { FILES_DIR } from "../../snapshot/manifest.ts";
import { refreshEntry, SMALL_FILE_MAX, type SmallRead } from "../../source/consistent.ts";
import type { SourceReader } from "../../source/reader.ts";
import { changedWhileReadWarning, retryWhileChanged, type StoredFile } from "../retry.ts";
import { type BackupWriter, skipUnreadable, type WriteJob, type WriteResult } from "../types.ts";

const COPY_CONCURRENCY = 8;

/**
 * Copy one source file to `dest` (a new file), hashing on the way; the copy keeps the mode
 * and mtime so that the backup folder can be browsed and copied back by hand.
 */
export async function storeFile(
  reader: SourceReader,
  entry: Entry,
  dest: string,
  onBytes?: (n: number) => void,
): Promise<StoredFile> {
  const small =
    (entry.size ?? Number.POSITIVE_INFINITY) <= SMALL_FILE_MAX ? reader.readSmall?.(entry) : undefined;
  if (small) return storeSmall(small, entry, dest, onBytes);
  const src = await reader.open(entry, { snapshotTo: dest });
  try {
    if (src.atDest) {
      // A database snapshot already written at `dest`: hash it there (from the page cache).
      const { sha256, bytes } = await copyAndHash(src.fh, undefined, onBytes);
      const changedWhileRead = await src.changed(); // before chmod/utimes move the copy's ctime
      const fresh = refreshEntry(entry, src.st);
      await fs.chmod(dest, fresh.mode);
      const mtime = utimesArg(fresh.mtimeNs);
      await fs.utimes(dest, mtime, mtime);
      return { entry: { ...fresh, size: bytes, sha256 }, changedWhileRead };
    }
    const out = await fs.open(dest, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      // A sparse source (fewer blocks than its size) is stored sparse: its holes stay holes.
      const holes = isSparse(src.st) ? holeSink(out) : undefined;
      const { sha256, bytes } = await copyAndHash(src.fh, holes?.write ?? out, onBytes);
      await holes?.finish();
      const changedWhileRead = (await src.changed()) || BigInt(bytes) !== src.st.size;
      const fresh = refreshEntry(entry, src.st);
      await out.chmod(fresh.mode);
      const mtime = utimesArg(fresh.mtimeNs);
      await out.utimes(mtime, mtime);
      return { entry: { ...fresh, size: bytes, sha256 }, changedWhileRead };
    } finally {
      await out.close();
    }
  } finally {
    await src.close();
  }
}

/** A file with fewer blocks allocated than its size holds holes (st_blocks counts 512-byte units). */
export function isSparse(st: BigIntStats): boolean {
  return st.size >= BigInt(SPARSE_MIN) && st.blocks * 512n < st.size;
}

/** The same for a file already read whole: synchronous calls, no thread-pool round trips. */
function storeSmall(small: SmallRead, entry: Entry, dest: string, onBytes?: (n: number) => void): StoredFile {
  const fresh = refreshEntry(entry, small.st);
  const fd = openSync(dest, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  try {
    for (let off = 0; off < small.data.length; ) off += writeSync(fd, small.data, off);
    fchmodSync(fd, fresh.mode);
    const mtime = utimesArg(fresh.mtimeNs);
    futimesSync(fd, mtime, mtime);
  } finally {
    closeSync(fd);
  }
  onBytes?.(small.data.length);
  const sha256 = createHash("sha256").update(small.data).digest("hex");
  return { entry: { ...fresh, size: small.data.length, sha256 }, changedWhileRead: small.changed };
}

async function makeSymlink(entry: Entry, dest: string): Promise<void> {
  await fs.symlink(entry.target ?? "", dest);
  const t = utimesArg(entry.mtimeNs);
  await fs.lutimes(dest, t, t);
}

/** The `separate` type: every file copied one by one under `files/`, browsable by hand. */
export const separateWriter: BackupWriter = {
  type: "separate",
  async write(job: WriteJob): Promise<WriteResult> {
    const root = path.join(job.tmp, FILES_DIR);
    await fs.mkdir(root, { recursive: true });
    for (const d of job.dirs) await fs.mkdir(path.join(root, d.path), { mode: 0o700 });
    const stored = new Map<string, Entry>();
    const failed = new Set<string>();
    await forEachLimit(job.files, COPY_CONCURRENCY, async (e) => {
      const dest = path.join(root, e.path);
      job.onStart?.(e);
      try {
        const r = await retryWhileChanged(
          () => storeFile(job.reader, e, dest, job.onBytes),
          () => fs.rm(dest, { force: true }),
        );
        stored.set(e.path, { ...r.entry, from: job.name });
        if (r.changedWhileRead) job.warn(changedWhileReadWarning(e.path, r.attempts));
      } catch (err) {
        skipUnreadable(job, failed, e.path, err);
        await fs.rm(dest, { force: true });
      }
      job.onFile(e);
    });
    for (const l of job.symlinks) await makeSymlink(l, path.join(root, l.path));
    // Folder modes and mtimes last, deepest first: writing into a folder moves its mtime.
    for (const d of [...job.dirs].reverse()) {
      const p = path.join(root, d.path);
      await fs.chmod(p, d.mode | 0o700);
      const t = utimesArg(d.mtimeNs);
      await fs.utimes(p, t, t);
    }
    return { stored, failed };
  },
  async finish() {},
};
