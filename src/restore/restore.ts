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
import { cancelledOr, throwIfCancelled } from "../core/cancel.ts";
import { BschedError, errnoCode } from "../core/errors.ts";
import type { Entry, Manifest, Progress, ProgressCallback, RootMeta } from "../core/types.ts";
import type { Destination } from "../destination/destination.ts";
import { openBackupReader } from "../format/open.ts";
import { NotStored } from "../format/types.ts";
import { type Clock, systemClock } from "../platform/clock.ts";
import { type CopyResult, holeSink, type Sink, SPARSE_MIN } from "../platform/copy.ts";
import { fsyncDir, syncTree } from "../platform/fsutil.ts";
import type { Lock } from "../platform/lockfile.ts";
import { isRestoreStagingOf, restoreStagingName } from "../platform/names.ts";
import { utimesArg } from "../platform/times.ts";
import { isDelta } from "../snapshot/blocks.ts";
import { type ChainLink, checkChainState } from "../snapshot/chain.ts";
import { isSetLockName, lockFolder } from "../source/setlock.ts";
import { assembledResult, blockParts, openAssembled, ownMaps } from "./assemble.ts";
import { removeRestoredMarker, writeRestoredMarker } from "./marker.ts";

export interface RestoreOptions {
  /** The chain oldest first; the last link is the backup to restore (each read from its `dest`). */
  chain: ChainLink[];
  /** The full manifest of the last link: the state to restore. */
  manifest: Manifest;
  target: string;
  overwrite?: boolean;
  onProgress?: ProgressCallback;
  concurrency?: number;
  clock?: Clock;
  /**
   * Read every backup of the chain from this destination instead of the one it was found on
   * (a test's fault-injecting wrapper around it).
   */
  destination?: Destination | undefined;
  /**
   * Stops the restore when it fires: checked between files, between chunks of a file and before
   * the staging folder is moved into place; then it fails with CANCELLED, leaving --to as a
   * failure would (as it was, or, with --overwrite into a full folder, partly written and said so).
   */
  signal?: AbortSignal | undefined;
  /**
   * false: leave no `.bsched-restored` marker (a restore of some paths only: the folder is not at
   * the backup's state, so the manual procedure must not go on from it). Default true.
   */
  marker?: boolean | undefined;
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

/** Inside a large file, a progress event every this many bytes. */
const PROGRESS_BYTES = 4 << 20;

const doingOf = (opts: RestoreOptions) => `restore of backup ${opts.manifest.name} into ${opts.target}`;

/** The event of a phase after the files (publish, done): the counts are the whole restore's. */
function wholeProgress(phase: "publish" | "done", r: RestoreResult): Progress {
  return { phase, files: r.files, bytes: r.bytes, totalFiles: r.files, totalBytes: r.bytes };
}

/**
 * Check the state before writing anything (snapshot/chain.ts: the same checks verify reports):
 * nothing is ever written through a symlink the chain planted, every file's content comes from
 * a backup of this chain.
 */
export function checkState(manifest: Manifest, chain: ChainLink[]): void {
  checkChainState(manifest, chain);
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

async function createExclusive(abs: string, overwrite: boolean, access: number = C.O_WRONLY) {
  const flags = access | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;
  try {
    return await fs.open(abs, flags, 0o600);
  } catch (e) {
    if (errnoCode(e) !== "EEXIST" || !overwrite) throw e;
  }
  await clear(abs);
  return fs.open(abs, flags, 0o600);
}

/**
 * Fill a new file through `copy`; a large one through a hole sink, so that the zero runs of a
 * sparse file (a VM disk, a preallocated archive) become holes again, not allocated zeros.
 */
async function fillSparse(
  out: fs.FileHandle,
  e: Entry,
  copy: (sink: Sink) => Promise<CopyResult>,
): Promise<CopyResult> {
  if ((e.size ?? 0) < SPARSE_MIN) return copy(out);
  const holes = holeSink(out);
  const r = await copy(holes.write);
  await holes.finish();
  return r;
}

/** Damage found while restoring: every file named, with the backup that holds it. */
function mismatch(name: string, problems: RestoreProblem[]): BschedError {
  const lines = problems.slice(0, 20).map((p) => `  ${p.path} (from ${p.backup}): ${p.problem}`);
  if (problems.length > 20) lines.push(`  … and ${problems.length - 20} more`);
  const err = new BschedError(
    "RESTORE_MISMATCH",
    `restore of ${name}: ${problems.length} file(s) did not restore exactly:\n${lines.join("\n")}`,
    {
      hint: "run `bsched verify` on this chain; restore another backup (--backup NAME), or repair the damaged files",
    },
  );
  return Object.assign(err, { problems });
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

/** The folder --to names: a folder, or absent (then made, with its missing parents: `firstMade`). */
async function makeTarget(target: string): Promise<{ firstMade?: string }> {
  let st: Awaited<ReturnType<typeof fs.lstat>>;
  try {
    st = await fs.lstat(target);
  } catch (e) {
    if (errnoCode(e) !== "ENOENT") throw e;
    const firstMade = await fs.mkdir(target, { recursive: true, mode: 0o700 });
    return { firstMade };
  }
  if (!st.isDirectory()) {
    throw new BschedError("TARGET_NOT_EMPTY", `restore target ${target} exists and is not a folder`, {
      hint: "choose a folder with --to",
    });
  }
  return {};
}

/** What --to holds besides our lock file (and a stale one being moved aside). */
async function targetItems(target: string): Promise<string[]> {
  return (await fs.readdir(target)).filter((n) => !isSetLockName(n));
}

/** What a restore into a folder that is not empty, without --overwrite, is refused with. */
export function targetNotEmpty(target: string, entries: number): BschedError {
  return new BschedError("TARGET_NOT_EMPTY", `restore target ${target} is not empty (${entries} entries)`, {
    hint: "restore into an empty or new folder, or pass --overwrite to replace what the backup holds",
  });
}

/** Which of `paths` (relative to `target`) exist there: what a restore with --overwrite replaces. */
export async function presentIn(target: string, paths: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const p of paths) {
    if (
      await fs.lstat(path.join(target, p)).then(
        () => true,
        () => false,
      )
    )
      found.push(p);
  }
  return found;
}

/** How many entries a restore target holds (its lock file aside); null when it does not exist. */
export async function targetEntries(target: string): Promise<number | null> {
  try {
    return (await targetItems(target)).length;
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return null;
    throw e;
  }
}

/**
 * Staging folders of restores into `target` that were killed (kill -9, power loss). Called with
 * the target's lock held: a live restore holds that lock until its staging folder is renamed,
 * so none of these can be in use.
 */
async function removeDeadStaging(target: string): Promise<void> {
  const parent = path.dirname(target);
  const names = await fs.readdir(parent).catch(() => [] as string[]);
  for (const n of names.filter((x) => isRestoreStagingOf(x, path.basename(target)))) {
    await fs.rm(path.join(parent, n), { recursive: true, force: true });
  }
}

/** Remove the folders makeTarget made (--to and the missing parents it created), if still empty. */
async function unmakeTarget(target: string, firstMade: string): Promise<void> {
  for (let d = target; ; d = path.dirname(d)) {
    if (
      !(await fs.rmdir(d).then(
        () => true,
        () => false,
      ))
    )
      return;
    if (d === firstMade || path.dirname(d) === d) return;
  }
}

/** A restore that did not complete: what state it left --to in, for the user (printed by the CLI). */
export type RestoreFailure = Error & { targetState?: string };

function withTargetState(e: unknown, state: string): unknown {
  if (e instanceof Error) (e as RestoreFailure).targetState = state;
  return e;
}

/**
 * Restore a state into `opts.target`, holding the target's lock file (docs/live-databases.md)
 * for the whole restore so that an application pointed at it can see it must wait.
 *
 * Nothing is half-done (docs/design.md "Restore"): into an absent or empty --to, the state is
 * restored into a hidden staging folder beside it and moved into place only once every file
 * checked out; any failure removes the staging folder and leaves --to as it was. With
 * --overwrite into a non-empty folder, the restore writes in place and a failure says what it
 * had written. The root folder's own metadata is set last, after the lock file is gone.
 */
export async function restoreState(opts: RestoreOptions): Promise<RestoreResult> {
  checkState(opts.manifest, opts.chain);
  const { target } = opts;
  const made = await makeTarget(target);
  let result: RestoreResult | undefined;
  let held: Awaited<ReturnType<typeof lockFolder>> | undefined;
  try {
    held = await lockFolder(target, `restore of backup ${opts.manifest.name}`, opts.clock ?? systemClock);
    if (held.lock) await removeDeadStaging(target);
    const items = await targetItems(target);
    if (items.length > 0 && !opts.overwrite) throw targetNotEmpty(target, items.length);
    // An --overwrite changes the folder: the marker of what it held before no longer holds.
    if (items.length > 0) await removeRestoredMarker(target);
    result =
      items.length === 0 ? await restoreStaged(opts, held.lock) : await restoreInPlace(opts, target, true);
    // Only an exact restore says which backup the folder is at (docs/design.md "manual procedure"):
    // the self-extracting files' --target checks it, so the manual procedure can go on from here.
    const last = opts.chain.at(-1);
    if (result.problems.length === 0 && last && opts.marker !== false) {
      await writeRestoredMarker(target, opts.manifest.set, opts.manifest.name, last.digest);
    }
  } finally {
    await held?.lock?.release();
    if (!result && made.firstMade) await unmakeTarget(target, made.firstMade);
  }
  if (opts.manifest.root) await applyRootMeta(target, opts.manifest.root);
  opts.onProgress?.(wholeProgress("done", result));
  return result;
}

/** The source root's mode, owner (as root) and mtime on --to: last, as every folder's. */
async function applyRootMeta(target: string, root: RootMeta): Promise<void> {
  if (isRoot) await fs.chown(target, root.uid, root.gid);
  await fs.chmod(target, root.mode);
  const t = utimesArg(root.mtimeNs);
  await fs.utimes(target, t, t);
}

/**
 * Restore into `.<name>.bsched-restore-PID-HEX` beside the empty --to (same file system), then
 * swap it in: our lock file moves into the staging folder (so it is never absent from what an
 * application sees at --to), the empty --to is removed, and the staging folder renamed onto it.
 * Where no sibling can be made (a parent we may not write, --to a mount point), the restore
 * writes in place and removes what it wrote on failure.
 */
async function restoreStaged(opts: RestoreOptions, lock: Lock | undefined): Promise<RestoreResult> {
  const { target } = opts;
  const parent = path.dirname(target);
  const staging = path.join(parent, restoreStagingName(path.basename(target)));
  const before = await fs.stat(target);
  const canStage =
    before.dev === (await fs.stat(parent)).dev &&
    (await fs.mkdir(staging, { mode: 0o700 }).then(
      () => true,
      (e) => {
        if (["EACCES", "EPERM", "EROFS"].includes(errnoCode(e) ?? "")) return false;
        throw e;
      },
    ));
  if (!canStage) return restoreInPlace(opts, target, false);
  let staged = true;
  try {
    const r = await restoreInto(opts, staging, false);
    if (!opts.manifest.root) {
      // An older manifest has no root metadata: --to keeps its own, as it always did.
      if (isRoot) await fs.chown(staging, before.uid, before.gid);
      await fs.chmod(staging, before.mode & 0o7777);
    }
    await syncTree(staging);
    // The last moment a cancel is honoured: once moved into place, the restore is done.
    throwIfCancelled(opts.signal, doingOf(opts));
    opts.onProgress?.(wholeProgress("publish", r));
    const lockAt = lock ? path.join(staging, path.basename(lock.file)) : undefined;
    if (lock && lockAt) await fs.rename(lock.file, lockAt);
    try {
      await fs.rmdir(target);
    } catch (e) {
      if (lock && lockAt) await fs.rename(lockAt, lock.file);
      throw new BschedError("IO", `cannot move the restored tree into ${target}: ${(e as Error).message}`, {
        hint: "something was put into the target during the restore; restore again into an empty folder",
        cause: e,
      });
    }
    try {
      await fs.rename(staging, target);
    } catch (e) {
      await fs.mkdir(target, { mode: before.mode & 0o7777 }).catch(() => undefined);
      throw e;
    }
    staged = false;
    await fsyncDir(parent);
    return r;
  } catch (e) {
    // A reader may wrap a cancel in its own error (a compressed payload "damaged"): it was a cancel.
    throw withTargetState(
      cancelledOr(opts.signal, e, doingOf(opts)),
      `${target} is as it was before: nothing was restored`,
    );
  } finally {
    if (staged) await fs.rm(staging, { recursive: true, force: true });
  }
}

/**
 * Restore straight into --to. `overwrite`: --to held other files, which the restore may
 * replace; on failure what was written stays and the error says so. Otherwise --to was empty
 * and a failure empties it again.
 */
async function restoreInPlace(
  opts: RestoreOptions,
  target: string,
  overwrite: boolean,
): Promise<RestoreResult> {
  const written: string[] = [];
  try {
    return await restoreInto(opts, target, overwrite, written);
  } catch (thrown) {
    const e = cancelledOr(opts.signal, thrown, doingOf(opts));
    if (!overwrite) {
      for (const n of await targetItems(target))
        await fs.rm(path.join(target, n), { recursive: true, force: true });
      throw withTargetState(e, `${target} is as it was before: what the restore wrote was removed`);
    }
    const some = written.slice(0, 5).join(", ");
    throw withTargetState(
      e,
      `${target} was partly overwritten: ${written.length} path(s) were written before the failure` +
        (written.length > 0 ? ` (${some}${written.length > 5 ? ", …" : ""})` : "") +
        "; the rest holds what it held before. Restore again with --overwrite from a good backup",
    );
  }
}

/**
 * Write the state into `target` (a folder that exists). Files whose content does not match
 * the manifest are collected, then the restore fails with all of them named (RESTORE_MISMATCH);
 * `written` gets the paths written, for the message of a failed in-place restore.
 */
async function restoreInto(
  opts: RestoreOptions,
  target: string,
  overwrite: boolean,
  written: string[] = [],
): Promise<RestoreResult> {
  const { manifest } = opts;
  const chain = opts.destination
    ? opts.chain.map((l) => ({ ...l, dest: opts.destination as Destination }))
    : opts.chain;
  const dirs = manifest.entries.filter((e) => e.kind === "dir");
  const files = manifest.entries.filter((e) => e.kind === "file");
  const links = manifest.entries.filter((e) => e.kind === "symlink");
  const problems: RestoreProblem[] = [];
  const abs = (e: Entry) => path.join(target, e.path);
  const { signal } = opts;
  const doing = doingOf(opts);

  for (const d of dirs) {
    throwIfCancelled(signal, doing);
    await ensureDir(abs(d), overwrite);
    written.push(d.path);
  }

  const totalBytes = files.reduce((n, e) => n + (e.size ?? 0), 0);
  const progress: Progress = { phase: "restore", files: 0, bytes: 0, totalFiles: files.length, totalBytes };
  opts.onProgress?.({ ...progress });
  let shownBytes = 0;
  // Each chunk written: a cancel stops the copy here, within a chunk of even a huge file.
  const onBytes = (n: number) => {
    progress.bytes += n;
    throwIfCancelled(signal, doing);
    if (progress.bytes - shownBytes >= PROGRESS_BYTES) {
      shownBytes = progress.bytes;
      opts.onProgress?.({ ...progress });
    }
  };
  const done = (e: Entry) => {
    written.push(e.path);
    progress.files++;
    shownBytes = progress.bytes;
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
  // Files stored as blocks (src/restore/assemble.ts) are assembled in place: created at their
  // size first, then each block written once, read from the backup that holds its newest version.
  const assembled = await openAssembled(files.filter(isDelta), chain, (e, access) =>
    createExclusive(abs(e), overwrite, access),
  );
  try {
    // Each backup of the chain hands out the files it stores in the order cheapest for its type
    // (src/format): restore never looks at the type. A file handed out twice (a compressed member
    // re-read because it changed) is written again: the last one is what the manifest describes.
    // Newest first: an assembled file's base (the oldest backup holding its blocks) then comes
    // after every other holder, and its pass hashes the finished file in order.
    const results = new Map<string, CopyResult>();
    for (const link of [...chain].reverse()) {
      const wanted = files.filter((e) => e.from === link.name && !isDelta(e));
      const own = await ownMaps(assembled, link, manifest);
      const parts = blockParts(assembled, link.name, own, onBytes);
      if (wanted.length === 0 && parts.size === 0) continue;
      const reader = await openBackupReader(link);
      const missing = (e: Entry, err: unknown) => {
        // A link, FIFO, device or socket where the stored file should be: refuse, naming it.
        if (err instanceof BschedError) {
          throw new BschedError(
            err.code,
            `backup ${link.name}: cannot restore ${JSON.stringify(e.path)}: ${err.message}`,
            { hint: err.hint },
          );
        }
        problems.push({
          path: e.path,
          backup: link.name,
          problem:
            err instanceof NotStored
              ? "content missing from the backup's payload"
              : `content missing from the backup: ${(err as Error).message}`,
        });
      };
      await reader.readAll(
        [...wanted, ...[...parts.values()].map((p) => p.entry)],
        async (e, content) => {
          throwIfCancelled(signal, doing);
          const part = parts.get(e.path);
          if (part) {
            await part.write(content);
            return;
          }
          progress.current = e.path;
          const again = overwrite || results.has(e.path);
          let r: CopyResult;
          if (content.data) {
            // Small files: written whole with synchronous calls (no thread-pool round trips).
            r = writeSmallFile(abs(e), e, again, content.data);
            onBytes(content.data.length);
          } else
            r = await writeFile(abs(e), e, again, (out) =>
              fillSparse(out, e, (s) => content.copy(s, onBytes)),
            );
          if (!results.has(e.path)) done(e);
          results.set(e.path, r);
        },
        { concurrency: opts.concurrency ?? 8, unread: missing },
      );
      for (const e of wanted) {
        const r = results.get(e.path);
        if (r) check(e, link.name, r);
      }
    }
    // Every assembled file checked against its whole-file sha256, as a copied one is.
    for (const a of assembled) {
      throwIfCancelled(signal, doing);
      check(a.e, a.e.from ?? "", await assembledResult(a));
      if (isRoot) await a.fh.chown(a.e.uid, a.e.gid);
      await a.fh.chmod(a.e.mode);
      const t = utimesArg(a.e.mtimeNs);
      await a.fh.utimes(t, t);
      done(a.e);
    }
  } finally {
    for (const a of assembled) await a.fh.close().catch(() => undefined);
  }

  for (const l of links) {
    throwIfCancelled(signal, doing);
    const p = abs(l);
    try {
      await fs.symlink(l.target ?? "", p);
    } catch (err) {
      if (errnoCode(err) !== "EEXIST" || !overwrite) throw err;
      await clear(p);
      await fs.symlink(l.target ?? "", p);
    }
    written.push(l.path);
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
  if (problems.length > 0) throw mismatch(manifest.name, problems);
  return { files: files.length, dirs: dirs.length, symlinks: links.length, bytes: totalBytes, problems };
}
