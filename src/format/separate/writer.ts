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
import type { BlockMap, Entry } from "../../core/types.ts";
import { copyAndHash, holeSink, SPARSE_MIN } from "../../platform/copy.ts";
import { forEachLimit } from "../../platform/fsutil.ts";
import { utimesArg } from "../../platform/times.ts";
import { BLOCKS_SUFFIX, deltaMap, isDelta, runsOf, SIZE_FILE, wholeMap } from "../../snapshot/blocks.ts";
import { FILES_DIR } from "../../snapshot/manifest.ts";
import { refreshEntry, SMALL_FILE_MAX, type SmallRead } from "../../source/consistent.ts";
import type { OpenedSource, SourceReader } from "../../source/reader.ts";
import {
  blockSizeOf,
  blocksToStore,
  hashBlocks,
  parentMapOf,
  readRun,
  tapBlocks,
  wantsBlocks,
} from "../blocks.ts";
import { APPLY_SCRIPT, applyScript, BLOCK_SIZE_FILE, MODE_FILE } from "../blocks-script.ts";
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
  blocks?: BlockJob,
): Promise<StoredFile> {
  const small =
    (entry.size ?? Number.POSITIVE_INFINITY) <= SMALL_FILE_MAX ? reader.readSmall?.(entry) : undefined;
  if (small) return storeSmall(small, entry, dest, onBytes);
  const big = blocks !== undefined && wantsBlocks(blocks.job, entry.size ?? 0);
  const parentMap = big ? parentMapOf(blocks.job, entry, entry.size ?? 0) : undefined;
  // A file that may be stored as blocks is read into the scratch folder (a database snapshot),
  // not at `dest`: its whole copy may never be written.
  const src = await reader.open(entry, parentMap ? {} : { snapshotTo: dest });
  try {
    const bs = big ? await blockSizeOf(src.fh, parentMap, entry.size ?? 0) : 0;
    let pass: Awaited<ReturnType<typeof hashBlocks>> | undefined;
    if (parentMap && blocks) {
      pass = await hashBlocks(src.fh, bs, onBytes);
      const list = blocksToStore(parentMap, pass.digests, pass.bytes);
      if (list) return await storeBlocks(src, entry, dest, parentMap, pass, list, blocks.name);
    }
    const mapOf = (digests: string) => (blocks ? { blocks: wholeMap(blocks.name, bs, digests) } : {});
    if (src.atDest) {
      // A database snapshot already written at `dest`: hash it there (from the page cache).
      const tap = big ? tapBlocks(bs, undefined) : undefined;
      const { sha256, bytes } = await copyAndHash(src.fh, tap?.sink, onBytes);
      const changedWhileRead = await src.changed(); // before chmod/utimes move the copy's ctime
      const fresh = refreshEntry(entry, src.st);
      await fs.chmod(dest, fresh.mode);
      const mtime = utimesArg(fresh.mtimeNs);
      await fs.utimes(dest, mtime, mtime);
      return {
        entry: { ...fresh, size: bytes, sha256, ...(tap ? mapOf(tap.digests()) : {}) },
        changedWhileRead,
      };
    }
    const out = await fs.open(dest, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      // A sparse source (fewer blocks than its size) is stored sparse: its holes stay holes.
      const holes = isSparse(src.st) ? holeSink(out) : undefined;
      const sink = holes?.write ?? out;
      // After a hashing pass (a file rewritten wholesale), the copy must be what that pass saw.
      const tap = big ? tapBlocks(bs, sink) : undefined;
      const { sha256, bytes } = await copyAndHash(src.fh, tap?.sink ?? sink, pass ? undefined : onBytes);
      await holes?.finish();
      const moved = pass !== undefined && pass.sha256 !== sha256;
      const changedWhileRead = moved || (await src.changed()) || BigInt(bytes) !== src.st.size;
      const fresh = refreshEntry(entry, src.st);
      await out.chmod(fresh.mode);
      const mtime = utimesArg(fresh.mtimeNs);
      await out.utimes(mtime, mtime);
      const map = tap ? mapOf(tap.digests()) : {};
      return { entry: { ...fresh, size: bytes, sha256, ...map }, changedWhileRead };
    } finally {
      await out.close();
    }
  } finally {
    await src.close();
  }
}

/** What storeFile needs to give big files a block map: the run, and the backup's name. */
export interface BlockJob {
  job: WriteJob;
  name: string;
}

/**
 * A changed big file stored as the blocks that differ from its parent's version, under
 * `PATH.bsched-blocks/`: one file per block named by its number, and `size` (the new length;
 * docs/design.md "Block incrementals" applies them by hand with dd).
 */
async function storeBlocks(
  src: OpenedSource,
  entry: Entry,
  dest: string,
  parent: BlockMap,
  pass: { digests: string; sha256: string; bytes: number },
  list: number[],
  name: string,
): Promise<StoredFile> {
  const dir = `${dest}${BLOCKS_SUFFIX}`;
  await fs.mkdir(dir, { mode: 0o700 });
  const map = { size: parent.size, digests: pass.digests };
  let moved = false;
  // One file per run of consecutive changed blocks, named by its first block.
  for (const run of runsOf(list)) {
    const { data, same } = await readRun(src.fh, run, map, pass.bytes);
    if (!same) moved = true;
    await fs.writeFile(path.join(dir, String(run.start)), data, { mode: 0o600, flag: "wx" });
  }
  const changedWhileRead = moved || (await src.changed()) || BigInt(pass.bytes) !== src.st.size;
  const fresh = refreshEntry(entry, src.st);
  await fs.writeFile(path.join(dir, BLOCK_SIZE_FILE), `${parent.size}\n`, { mode: 0o600, flag: "wx" });
  await fs.writeFile(path.join(dir, MODE_FILE), `${fresh.mode.toString(8)}\n`, { mode: 0o600, flag: "wx" });
  // Written last, with the file's mtime: the by-hand procedure gives it to the file (touch -r).
  const sizeFile = path.join(dir, SIZE_FILE);
  await fs.writeFile(sizeFile, `${pass.bytes}\n`, { mode: 0o600, flag: "wx" });
  const mtime = utimesArg(fresh.mtimeNs);
  await fs.utimes(sizeFile, mtime, mtime);
  return {
    entry: {
      ...fresh,
      size: pass.bytes,
      sha256: pass.sha256,
      blocks: deltaMap(parent, name, pass.digests, list),
    },
    changedWhileRead,
  };
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

/** A stored file, whole or as blocks, removed before another read of it. */
async function removeStored(dest: string): Promise<void> {
  await fs.rm(dest, { force: true });
  await fs.rm(`${dest}${BLOCKS_SUFFIX}`, { recursive: true, force: true });
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
          () => storeFile(job.reader, e, dest, job.onBytes, { job, name: job.name }),
          () => removeStored(dest),
        );
        stored.set(e.path, { ...r.entry, from: job.name });
        if (r.changedWhileRead) job.warn(changedWhileReadWarning(e.path, r.attempts));
      } catch (err) {
        skipUnreadable(job, failed, e.path, err);
        await removeStored(dest);
      }
      job.onFile(e);
    });
    for (const l of job.symlinks) await makeSymlink(l, path.join(root, l.path));
    // Files stored as blocks: the script that applies them by hand, beside files/.
    if ([...stored.values()].some(isDelta)) {
      await fs.writeFile(path.join(job.tmp, APPLY_SCRIPT), applyScript(job.name), {
        mode: 0o755,
        flag: "wx",
      });
    }
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
