import { createHash } from "node:crypto";
import {
  constants as C,
  closeSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  openSync,
  rmSync,
  writeSync,
} from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { BschedError, errnoCode } from "../core/errors.ts";
import type { Entry, Manifest, ProgressCallback } from "../core/types.ts";
import { type Clock, systemClock } from "../platform/clock.ts";
import { type CopyResult, copyAndHash } from "../platform/copy.ts";
import { beneath, forEachLimit, openBeneath } from "../platform/fsutil.ts";
import { utimesArg } from "../platform/times.ts";
import type { ChainLink } from "../snapshot/chain.ts";
import { FILES_DIR } from "../snapshot/manifest.ts";
import { parentOf } from "../snapshot/paths.ts";
import { readSmallSync, SMALL_FILE_MAX, type SmallRead } from "../source/consistent.ts";
import { isOwnFileName, lockFolder } from "../source/setlock.ts";
import { removeRestoredMarker, writeRestoredMarker } from "./marker.ts";

export interface RestoreOptions {
  /** The chain oldest first; the last link is the backup to restore. */
  chain: ChainLink[];
  /** The full manifest of the last link: the state to restore. */
  manifest: Manifest;
  target: string;
  overwrite?: boolean;
  onProgress?: ProgressCallback;
  concurrency?: number;
  clock?: Clock;
}

export interface RestoreProblem {
  path: string;
  backup: string;
  problem: string;
}

export interface RestoreResult {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  problems: RestoreProblem[];
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/**
 * Check the state before writing anything: every entry's parent must be a folder of the state
 * itself (so nothing is ever written through a symlink the chain planted) and every file's
 * content must come from a backup of this chain.
 */
export function checkState(manifest: Manifest, chain: ChainLink[]): void {
  const kinds = new Map(manifest.entries.map((e) => [e.path, e.kind]));
  const names = new Set(chain.map((l) => l.name));
  for (const e of manifest.entries) {
    const parent = parentOf(e.path);
    if (parent !== undefined && kinds.get(parent) !== "dir") {
      const what = kinds.get(parent) === undefined ? "is not in the backup" : `is a ${kinds.get(parent)}`;
      throw new BschedError(
        "UNSAFE_PATH",
        `backup ${manifest.name}: ${JSON.stringify(e.path)} lies under ${JSON.stringify(parent)}, which ${what}; refusing to restore`,
        {
          hint: "the manifest was altered; restore from another backup",
        },
      );
    }
    if (e.kind === "file" && (e.from === undefined || !names.has(e.from))) {
      throw new BschedError(
        "UNSAFE_PATH",
        `backup ${manifest.name}: file ${JSON.stringify(e.path)} names content in ${JSON.stringify(e.from)}, which is not part of its chain`,
      );
    }
  }
}

async function prepareTarget(target: string, overwrite: boolean): Promise<void> {
  try {
    const st = await fs.lstat(target);
    if (!st.isDirectory()) {
      throw new BschedError("TARGET_NOT_EMPTY", `restore target ${target} exists and is not a folder`, {
        hint: "choose a folder with --to",
      });
    }
    const items = (await fs.readdir(target)).filter((n) => !isOwnFileName(n));
    if (items.length > 0 && !overwrite) {
      throw new BschedError(
        "TARGET_NOT_EMPTY",
        `restore target ${target} is not empty (${items.length} entries)`,
        {
          hint: "restore into an empty or new folder, or pass --overwrite to replace what the backup holds",
        },
      );
    }
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
    await fs.mkdir(target, { recursive: true, mode: 0o700 });
  }
}

/** Remove whatever stands at `abs` (file, link or folder) without following links. */
async function clear(abs: string): Promise<void> {
  await fs.rm(abs, { recursive: true, force: true });
}

async function ensureDir(abs: string, overwrite: boolean): Promise<void> {
  try {
    await fs.mkdir(abs, { mode: 0o700 });
    return;
  } catch (e) {
    if (errnoCode(e) !== "EEXIST") throw e;
  }
  const st = await fs.lstat(abs);
  if (st.isDirectory()) return;
  if (!overwrite) throw new BschedError("IO", `${abs} appeared during the restore`);
  await clear(abs);
  await fs.mkdir(abs, { mode: 0o700 });
}

async function createExclusive(abs: string, overwrite: boolean) {
  const flags = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;
  try {
    return await fs.open(abs, flags, 0o600);
  } catch (e) {
    if (errnoCode(e) !== "EEXIST" || !overwrite) throw e;
  }
  await clear(abs);
  return fs.open(abs, flags, 0o600);
}

/** Create the file at `dest` (never through a link), fill it, then give it the entry's owner, mode and mtime. */
async function writeFile(
  dest: string,
  e: Entry,
  overwrite: boolean,
  fill: (out: fs.FileHandle) => Promise<CopyResult>,
): Promise<CopyResult> {
  const out = await createExclusive(dest, overwrite);
  try {
    const r = await fill(out);
    if (isRoot) await out.chown(e.uid, e.gid);
    await out.chmod(e.mode);
    const t = utimesArg(e.mtimeNs);
    await out.utimes(t, t);
    return r;
  } finally {
    await out.close();
  }
}

/** writeFile for content already in memory, with synchronous calls. */
function writeSmallFile(dest: string, e: Entry, overwrite: boolean, data: Buffer): CopyResult {
  const flags = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;
  let fd: number;
  try {
    fd = openSync(dest, flags, 0o600);
  } catch (err) {
    if (errnoCode(err) !== "EEXIST" || !overwrite) throw err;
    rmSync(dest, { recursive: true, force: true });
    fd = openSync(dest, flags, 0o600);
  }
  try {
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
    if (isRoot) fchownSync(fd, e.uid, e.gid);
    fchmodSync(fd, e.mode);
    const t = utimesArg(e.mtimeNs);
    futimesSync(fd, t, t);
  } finally {
    closeSync(fd);
  }
  return { bytes: data.length, sha256: createHash("sha256").update(data).digest("hex") };
}

/**
 * Restore a state into `opts.target`, holding the target's lock file (docs/live-databases.md)
 * for the whole restore so that an application pointed at it can see it must wait.
 */
export async function restoreState(opts: RestoreOptions): Promise<RestoreResult> {
  checkState(opts.manifest, opts.chain);
  const made = await fs.mkdir(opts.target, { recursive: true, mode: 0o700 }).then(
    () => true,
    () => false,
  );
  const held = made
    ? await lockFolder(opts.target, `restore of backup ${opts.manifest.name}`, opts.clock ?? systemClock)
    : undefined;
  try {
    // An --overwrite changes the folder: the marker of what it held before no longer holds.
    await removeRestoredMarker(opts.target);
    const r = await restoreLocked(opts);
    // Only an exact restore says which backup the folder is at (docs/design.md "manual procedure").
    const last = opts.chain.at(-1);
    if (r.problems.length === 0 && last)
      await writeRestoredMarker(opts.target, opts.manifest.set, opts.manifest.name, last.digest);
    return r;
  } finally {
    await held?.lock?.release();
  }
}

async function restoreLocked(opts: RestoreOptions): Promise<RestoreResult> {
  const { manifest, chain, target } = opts;
  const overwrite = opts.overwrite ?? false;
  await prepareTarget(target, overwrite);
  const linkByName = new Map(chain.map((l) => [l.name, l]));
  const dirs = manifest.entries.filter((e) => e.kind === "dir");
  const files = manifest.entries.filter((e) => e.kind === "file");
  const links = manifest.entries.filter((e) => e.kind === "symlink");
  const problems: RestoreProblem[] = [];
  const abs = (e: Entry) => path.join(target, e.path);

  for (const d of dirs) await ensureDir(abs(d), overwrite);

  const totalBytes = files.reduce((n, e) => n + (e.size ?? 0), 0);
  const progress = { phase: "restore" as const, files: 0, bytes: 0, totalFiles: files.length, totalBytes };
  const onBytes = (n: number) => {
    progress.bytes += n;
  };
  const done = (e: Entry) => {
    progress.files++;
    opts.onProgress?.({ ...progress, current: e.path });
  };
  const check = (e: Entry, backup: string, r: CopyResult) => {
    if (r.sha256 !== e.sha256 || r.bytes !== e.size) {
      problems.push({
        path: e.path,
        backup,
        problem: `restored content differs from the manifest (${r.bytes} bytes, sha256 ${r.sha256.slice(0, 12)}…; expected ${e.size} bytes, ${e.sha256?.slice(0, 12)}…)`,
      });
    }
  };
  const fromSeparate = files.filter((e) => linkByName.get(e.from as string)?.header.type !== "compressed");
  const realDirs = new Set<string>();
  await forEachLimit(fromSeparate, opts.concurrency ?? 8, async (e) => {
    const from = linkByName.get(e.from as string) as ChainLink;
    const missing = (err: unknown) =>
      problems.push({
        path: e.path,
        backup: from.name,
        problem: `content missing from the backup: ${(err as Error).message}`,
      });
    if ((e.size ?? Number.POSITIVE_INFINITY) <= SMALL_FILE_MAX) {
      // Small files: read and written whole with synchronous calls (no thread-pool round trips).
      let small: SmallRead | undefined;
      try {
        small = readSmallSync(beneath(path.join(from.path, FILES_DIR), e.path, realDirs), () => true);
      } catch (err) {
        missing(err);
        return;
      }
      if (small) {
        check(e, from.name, writeSmallFile(abs(e), e, overwrite, small.data));
        onBytes(small.data.length);
        done(e);
        return;
      }
    }
    let input: fs.FileHandle;
    try {
      input = await openBeneath(path.join(from.path, FILES_DIR), e.path, realDirs);
    } catch (err) {
      missing(err);
      return;
    }
    try {
      check(e, from.name, await writeFile(abs(e), e, overwrite, (out) => copyAndHash(input, out, onBytes)));
    } finally {
      await input.close();
    }
    done(e);
  });
  // A compressed backup is read once, front to back; a member met twice (a file re-read because it
  // changed) is written again: the last one is what the manifest describes.
  const compressed = chain.filter((l) => l.header.type === "compressed");
  // Loaded only when the chain has a compressed backup: tar's code is not needed otherwise.
  const { forEachPayloadFile, hashStream } =
    compressed.length > 0 ? await import("./from-payload.ts") : ({} as never);
  for (const link of compressed) {
    const wanted = new Map(files.filter((e) => e.from === link.name).map((e) => [e.path, e]));
    if (wanted.size === 0) continue;
    const results = new Map<string, CopyResult>();
    await forEachPayloadFile(link, wanted, async (e, entry) => {
      const again = overwrite || results.has(e.path);
      let r: CopyResult;
      if (entry.size <= SMALL_FILE_MAX) {
        // A small member: gathered in memory, then written with synchronous calls.
        const parts: Buffer[] = [];
        for await (const chunk of entry) parts.push(chunk as Buffer);
        const data = Buffer.concat(parts);
        r = writeSmallFile(abs(e), e, again, data);
        onBytes(data.length);
      } else r = await writeFile(abs(e), e, again, (out) => hashStream(entry, out, onBytes));
      if (!results.has(e.path)) done(e);
      results.set(e.path, r);
    });
    for (const [p, e] of wanted) {
      const r = results.get(p);
      if (r) check(e, link.name, r);
      else
        problems.push({ path: p, backup: link.name, problem: "content missing from the backup's payload" });
    }
  }

  for (const l of links) {
    const p = abs(l);
    try {
      await fs.symlink(l.target ?? "", p);
    } catch (err) {
      if (errnoCode(err) !== "EEXIST" || !overwrite) throw err;
      await clear(p);
      await fs.symlink(l.target ?? "", p);
    }
    if (isRoot) await fs.lchown(p, l.uid, l.gid).catch(() => undefined);
    const t = utimesArg(l.mtimeNs);
    await fs.lutimes(p, t, t);
  }
  // Folder metadata last and deepest first: creating entries moves a folder's mtime.
  for (const d of [...dirs].reverse()) {
    const p = abs(d);
    if (isRoot) await fs.chown(p, d.uid, d.gid);
    await fs.chmod(p, d.mode);
    const t = utimesArg(d.mtimeNs);
    await fs.utimes(p, t, t);
  }
  opts.onProgress?.({ ...progress, phase: "done" });
  return { files: files.length, dirs: dirs.length, symlinks: links.length, bytes: totalBytes, problems };
}
