import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { SetConfig } from "../config/load.ts";
import { cancelledOr, throwIfCancelled } from "../core/cancel.ts";
import { BschedError } from "../core/errors.ts";
import type {
  BackupMode,
  BackupSummary,
  BackupType,
  Entry,
  Manifest,
  ParentRef,
  Progress,
  ProgressCallback,
  RootMeta,
  Totals,
  Warning,
} from "../core/types.ts";
import { assessBackups, diskBytesOf, listBackups, readManifest, readState } from "../destination/backups.ts";
import type { Destination, Staging } from "../destination/destination.ts";
import { destinationOf } from "../destination/for-set.ts";
import type { Compressor } from "../format/compressed/frames.ts";
import { separateWriter } from "../format/separate/writer.ts";
import type { BackupWriter, WriteJob } from "../format/types.ts";
import type { Clock } from "../platform/clock.ts";
import { hostName } from "../platform/host.ts";
import { fromOsError, megabytes, mountPointOf } from "../platform/os-errors.ts";
import { BLOCKS_MIN, BLOCKS_SUFFIX, blocksDirOf, isDelta, storedBlockBytes } from "../snapshot/blocks.ts";
import { type ChainLink, resolveChain } from "../snapshot/chain.ts";
import { type Plan, planBackup } from "../snapshot/diff.ts";
import { CURRENT_FORMAT, serializeManifest, summarize } from "../snapshot/manifest.ts";
import { backupBaseName, uniqueName } from "../snapshot/naming.ts";
import { parentOf } from "../snapshot/paths.ts";
import { changesSince } from "../snapshot/state.ts";
import { consistentReader, liveSource } from "../source/consistent-reader.ts";
import { scanTree } from "../source/scan.ts";
import { lockFolder } from "../source/setlock.ts";
import { VERSION } from "../version.ts";
import { fullIsDue } from "./cadence.ts";
import { withHooks } from "./hooks.ts";

export interface BackupOptions {
  set: SetConfig;
  timezone: string;
  clock: Clock;
  mode?: BackupMode;
  type?: BackupType;
  onProgress?: ProgressCallback;
  onWarning?: (w: Warning) => void;
  /** Lines for the log (hooks' output); default: stderr. */
  onLog?: (line: string) => void;
  /**
   * Advice that is not a defect of the backup (SAME_FILESYSTEM): shown once per run, kept out of
   * the manifest and the exit code. Default: a `bsched: warning:` line on stderr.
   */
  onNotice?: (w: Warning) => void;
  /**
   * Test seam: the bytes a compressed backup reserves for its manifest (default: from a draft of
   * it), so that a test can force the rare path where the manifest outgrows its room.
   */
  compressedManifestReserve?: number;
  /**
   * Where the backup is written: overrides the set's own destination (default destinationOf(set);
   * a test's fault-injecting wrapper goes here).
   */
  destination?: Destination | undefined;
  /**
   * Stops the run when it fires: checked during the scan, between files, between chunks of a file
   * and before the publish, then the run fails with CANCELLED leaving what a crash would (its
   * staging area removed, its locks released). Once the backup is published it is complete.
   */
  signal?: AbortSignal | undefined;
  /**
   * Files at least this long get a block map and, once changed, store only their changed blocks
   * (default BLOCKS_MIN, 8 MiB: src/snapshot/blocks.ts); tests lower it to keep their data small.
   */
  blockMin?: number | undefined;
}

/** In the backup's temporary folder: SQLite snapshots waiting to be stored; gone before the manifest. */
const SCRATCH_DIR = ".scratch";

/** Inside a large file, a progress event every this many bytes (a watcher sees it move, small files add none). */
const PROGRESS_BYTES = 4 << 20;

export interface BackupResult {
  summary: BackupSummary;
  warnings: Warning[];
  /** Crashed runs' leftovers removed before this run. */
  cleaned: string[];
}

/** The parent of a new incremental: the newest complete backup of the set, if its chain is whole. */
async function findParent(set: SetConfig, dest: Destination, warn: (w: Warning) => void) {
  const { backups } = await listBackups(dest, set.letter, set.id);
  const newest = backups.at(-1);
  if (!newest) return undefined;
  try {
    // Every ancestor must be there, complete.
    const byName = new Map(backups.map((b) => [b.name, { ...b, digest: "" }]));
    const chain = await resolveChain(byName.get(newest.name) as ChainLink, async (n) => byName.get(n), {
      checkDigests: false,
    });
    // An incremental on a chain that cannot be restored (a parent altered: digests differ, or a
    // manifest cut short) would be unrestorable too: then a full, like a missing link. This
    // hashes each parent's manifest once (what retention reads anyway after the backup).
    const judged = (await assessBackups(dest, set.letter, set.id)).find((b) => b.name === newest.name);
    if (judged?.state === "broken")
      throw new Error(`backup ${newest.name} cannot be restored: ${judged.reason}`);
    // Its digest is the new backup's parent reference; its state, what change detection compares
    // with (a format-3 incremental's manifest lists only changes: its ancestors' complete it).
    const ref = await readManifest(dest, newest.name);
    const state = await readState(chain, ref.manifest);
    return { ref, state, digest: ref.digest, chainLength: chain.length, ancestors: chain.map((l) => l.name) };
  } catch (e) {
    warn({
      path: newest.name,
      code: "CHAIN_BROKEN",
      message: `the newest backup's chain cannot be used (${(e as Error).message}); making a full backup instead`,
    });
    return undefined;
  }
}

function totalsOf(entries: Entry[], name: string, deletions: number): Totals {
  const t: Totals = { files: 0, dirs: 0, symlinks: 0, bytes: 0, storedFiles: 0, storedBytes: 0, deletions };
  for (const e of entries) {
    if (e.kind === "file") {
      t.files++;
      t.bytes += e.size ?? 0;
      if (e.from === name) {
        t.storedFiles++;
        t.storedBytes += isDelta(e) ? storedBlockBytes(e, name) : (e.size ?? 0);
      }
    } else if (e.kind === "dir") t.dirs++;
    else t.symlinks++;
  }
  return t;
}

/**
 * One backup of a set as a live server needs it (docs/live-databases.md): the set's lock file in
 * its source folder for the whole run, then the server's and the set's hooks around the backup.
 * The lock comes first: a run refused because another holds the set must not run hooks (its
 * `after` could restart a service the other run stopped).
 */
export async function runBackup(opts: BackupOptions): Promise<BackupResult> {
  const { set } = opts;
  const log = opts.onLog ?? ((line: string) => process.stderr.write(`bsched: ${line}\n`));
  const early: Warning[] = [];
  const isDir = await fs.stat(set.source).then(
    (s) => s.isDirectory(),
    () => false,
  );
  // The root's mtime before our lock file moves it (see rootMeta).
  const beforeLock = isDir ? await fs.stat(set.source, { bigint: true }).catch(() => undefined) : undefined;
  const held = isDir ? await lockFolder(set.source, `backup of set ${set.id}`, opts.clock) : undefined;
  const afterLock = held?.lock
    ? await fs.stat(set.source, { bigint: true }).catch(() => undefined)
    : beforeLock;
  if (held?.reason) {
    const w: Warning = {
      path: ".",
      code: "SOURCE_NOT_LOCKED",
      message: `${held.reason}: the application was not told this set was being backed up`,
    };
    early.push(w);
    opts.onWarning?.(w);
  }
  try {
    const { result, afterFailures } = await withHooks(
      [
        { scope: "server", hooks: set.serverHooks },
        { scope: "set", hooks: set.hooks },
      ],
      { set: set.id, source: set.source, log },
      () => backupSet(opts, early, { beforeLock, afterLock }),
      (r) => ({ status: r.warnings.length > 0 ? "warnings" : "success", backup: r.summary.name }),
    );
    for (const f of afterFailures) {
      // The manifest is written: the warning reaches the exit code and the log, not the backup.
      const w: Warning = { path: ".", code: "HOOK_FAILED", message: `${f}; the backup itself is complete` };
      result.warnings.push(w);
      opts.onWarning?.(w);
    }
    return result;
  } catch (e) {
    // A hook killed by the same Ctrl-C (the terminal signals the whole group) fails: a cancel still.
    throw cancelledOr(opts.signal, e, `backup of set ${set.id}`);
  } finally {
    await held?.lock?.release();
  }
}

/** The source root's stat just before and just after its lock file was created. */
interface RootStats {
  beforeLock?: BigIntStats;
  afterLock?: BigIntStats;
}

/**
 * The source root's own metadata as of the scan. Creating the lock file in it moved its mtime:
 * when nothing else moved it since, the mtime from before the lock is the application's.
 */
async function rootMeta(source: string, around: RootStats): Promise<RootMeta> {
  const now = await fs.stat(source, { bigint: true });
  const untouched = around.beforeLock && around.afterLock?.mtimeNs === now.mtimeNs;
  return {
    mode: Number(now.mode & 0o7777n),
    mtimeNs: (untouched ? (around.beforeLock as BigIntStats) : now).mtimeNs.toString(),
    uid: Number(now.uid),
    gid: Number(now.gid),
  };
}

async function backupSet(opts: BackupOptions, early: Warning[], around: RootStats): Promise<BackupResult> {
  const { set, clock, signal } = opts;
  const dest = opts.destination ?? destinationOf(set);
  const doing = `backup of set ${set.id}`;
  // The `before` hooks may have taken a while: a cancel meanwhile stops the run here.
  throwIfCancelled(signal, doing);
  const type = opts.type ?? set.type;
  const wantMode = opts.mode ?? set.mode;
  const srcStat = await fs.stat(set.source).catch(() => undefined);
  if (!srcStat?.isDirectory()) {
    throw new BschedError(
      "SOURCE_MISSING",
      `set "${set.id}": source folder ${set.source} does not exist or is not a folder`,
      {
        hint: `create it, or fix sets.${set.id}.source in the config`,
      },
    );
  }
  await dest.ready();
  await noticeSameFileSystem(opts, dest, srcStat.dev);
  // A destination's own failure (an OS error of a remote, a fault of a test) worded like the rest.
  const lock = await dest.lock(set.id, `backup of set ${set.id}`, clock).catch((e: unknown) => {
    throw fromOsError(e, { path: dest.where, doing: `backup of set ${set.id}` });
  });
  const warnings: Warning[] = [...early];
  const warn = (w: Warning) => {
    warnings.push(w);
    opts.onWarning?.(w);
  };
  let staging: Staging | undefined;
  let writer: BackupWriter | undefined;
  let needed: number | undefined;
  try {
    const cleaned = await dest.removeLeftovers(set.letter);
    const started = clock.now();
    const found = wantMode === "incremental" ? await findParent(set, dest, warn) : undefined;
    // The set's own mode follows its full cadence; an explicit --mode is done as asked.
    const cadenceFull = opts.mode === undefined && found && fullIsDue(set.fullEvery, found.chainLength);
    const parent = cadenceFull ? undefined : found;
    const mode: BackupMode = parent ? "incremental" : "full";

    const root = await rootMeta(set.source, around);
    const scan = await liveSource(
      set.source,
      await scanTree(set.source, (n) => {
        throwIfCancelled(signal, doing);
        opts.onProgress?.({ phase: "scan", files: n, bytes: 0, totalFiles: 0, totalBytes: 0 });
      }),
    );
    for (const w of scan.warnings) warn(w);
    // The parent's state by path: change detection, block maps and the changes to record use it.
    const parentState = new Map((parent?.state.entries ?? []).map((e) => [e.path, e]));
    const plan = planBackup(
      scan.entries,
      parent ? parentState : undefined,
      parent && (await dest.createdNs?.(parent.ref.name)),
    );

    needed = await checkFreeSpace(set, dest, type, plan.toStore);
    const existing = new Set(await dest.names());
    const name = uniqueName(backupBaseName(set.letter, started, opts.timezone), (n) => existing.has(n));
    throwIfCancelled(signal, doing);
    // The writers write into the staging area's local folder, as fast as into the final one.
    staging = await dest.stage(name);
    const tmp = staging.dir;

    const totalBytes = plan.toStore.reduce((n, e) => n + (e.size ?? 0), 0);
    const progress: Progress & { phase: "copy" } = {
      phase: "copy",
      files: 0,
      bytes: 0,
      totalFiles: plan.toStore.length,
      totalBytes,
    };
    opts.onProgress?.({ ...progress });
    let shownBytes = 0;
    const links = mode === "full" ? plan.entries.filter((x) => x.kind === "symlink") : plan.newSymlinks;
    const parentRef: ParentRef | null = parent ? { name: parent.ref.name, digest: parent.digest } : null;
    // `entries`: the new state. A full records it whole; an incremental only what differs from
    // its parent's state (format 3, docs/design.md "Manifest"). The totals are the whole state's.
    const makeManifest = (entries: Entry[], finishedAt: Date): Manifest => ({
      format: "bsched-manifest",
      formatVersion: CURRENT_FORMAT,
      tool: { name: "bsched", version: VERSION },
      host: hostName(),
      set: set.id,
      letter: set.letter,
      name,
      type,
      mode,
      holds: mode === "full" ? "state" : "changes",
      timezone: opts.timezone,
      startedAt: started.toISOString(),
      finishedAt: finishedAt.toISOString(),
      parent: parentRef,
      root,
      entries: mode === "full" ? entries : changesSince(parentState, entries),
      deletions: plan.deletions,
      totals: totalsOf(entries, name, plan.deletions.length),
      warnings,
    });
    const blockNames = blockLayoutNames(plan.entries, warn);
    const job: WriteJob = {
      tmp,
      name,
      set: set.id,
      mode,
      parent: parentRef?.name ?? null,
      parentDigest: parentRef?.digest ?? null,
      // The new backup's chain before it: its parent's chain (a self-extracting file prints it).
      ancestors: parent?.ancestors ?? [],
      draftManifest: () => serializeManifest(makeManifest(draftEntries(plan.entries, name), started)),
      reader: consistentReader(set.source, path.join(tmp, SCRATCH_DIR), { warn }),
      dirs: dirsToCreate(plan, mode, links),
      files: plan.toStore,
      symlinks: links,
      deletions: plan.deletions,
      warn,
      // Each chunk copied: a cancel stops the copy here, within a chunk of even a huge file.
      onBytes: (n) => {
        progress.bytes += n;
        throwIfCancelled(signal, doing);
        if (progress.bytes - shownBytes >= PROGRESS_BYTES) {
          shownBytes = progress.bytes;
          opts.onProgress?.({ ...progress });
        }
      },
      onStart: (e) => {
        throwIfCancelled(signal, doing);
        progress.current = e.path;
      },
      onFile: (e) => {
        progress.files++;
        shownBytes = progress.bytes;
        opts.onProgress?.({ ...progress, current: e.path });
      },
      blockMin: opts.blockMin ?? BLOCKS_MIN,
      // PATH is stored whole while the state holds PATH.bsched-blocks: its blocks have nowhere to go.
      blockParent: (p) => (blockNames.has(blocksDirOf(p)) ? undefined : parentState.get(p)),
    };
    writer = await writerFor(type, set.compression, opts.compressedManifestReserve);
    const { stored, failed } = await writer.write(job);
    await fs.rm(path.join(tmp, SCRATCH_DIR), { recursive: true, force: true });

    const entries: Entry[] = [];
    for (const e of plan.entries) {
      if (e.kind !== "file") entries.push(stripFileKeys(e));
      else if (e.sha256) entries.push(e);
      else if (!failed.has(e.path)) entries.push(stored.get(e.path) as Entry);
      else {
        // Unreadable now: the parent's copy is better than nothing, and the warning says so.
        const old = parentState.get(e.path);
        if (old?.kind === "file") {
          entries.push(old);
          warn({
            path: e.path,
            code: "KEPT_PREVIOUS",
            message: `unreadable; the copy from ${old.from} is kept`,
          });
        }
      }
    }
    throwIfCancelled(signal, doing);
    opts.onProgress?.({ ...progress, phase: "publish" });
    const manifest = makeManifest(entries, clock.now());
    const manifestText = serializeManifest(manifest);
    await writer.finish(job, manifest, manifestText);
    // The last moment a cancel is honoured: once published, the backup is complete and listed.
    throwIfCancelled(signal, doing);
    // Durable, the manifest last, then visible under its name (Staging.publish).
    await staging.publish(manifestText);
    staging = undefined;
    opts.onProgress?.({ ...progress, phase: "done" });
    const { entries: _e, deletions: _d, ...header } = manifest;
    return {
      summary: summarize(header, dest.locationOf(name), await diskBytesOf(dest, name, header)),
      warnings,
      cleaned,
    };
  } catch (e) {
    await writer?.abort?.();
    // The staging area goes first: the free space then reported is what the disk really has.
    await staging?.abort();
    staging = undefined;
    // Whatever a layer below made of a cancel (a writer's own error), the run was cancelled.
    throw fromOsError(cancelledOr(signal, e, doing), {
      path: dest.where,
      doing,
      neededBytes: needed,
      diskFullHint: diskFullHint(set, dest),
    });
  } finally {
    await staging?.abort();
    await lock.release();
  }
}

/**
 * The seed's advice, keep copies in separate places, checked: a backup folder on the source's
 * own file system dies with that disk. Advice, not a defect of the backup: it does not change
 * the exit code (the default <root>/Backup is always there, and exit 3 on every run would hide
 * real warnings).
 */
async function noticeSameFileSystem(
  opts: BackupOptions,
  dest: Destination,
  sourceDev: number,
): Promise<void> {
  const { set } = opts;
  // Only a destination on a local file system can share the source's disk (device()).
  const dev = await dest.device?.();
  if (dev === undefined || dev !== sourceDev) return;
  const w: Warning = {
    path: dest.where,
    code: "SAME_FILESYSTEM",
    message:
      `the backup folder is on the same file system as the source ${set.source} ` +
      `(${mountPointOf(dest.where) ?? `device ${dev}`}): a failure of that disk loses both; ` +
      `keep copies in separate places (${set.folderKey ?? `sets.${set.id}.folder`} on another disk)`,
  };
  if (opts.onNotice) opts.onNotice(w);
  else process.stderr.write(`bsched: warning: ${w.path}: ${w.message} [${w.code}]\n`);
}

function diskFullHint(set: SetConfig, dest: Destination): string {
  const key = set.folderKey ?? `sets.${set.id}.folder`;
  return `free space on ${mountPointOf(dest.where) ?? dest.where} (\`bsched prune ${set.id}\` applies the keep policy; remove other files), or set ${key} to a larger disk`;
}

/**
 * Refuse early, before anything is written, a backup that clearly cannot fit: the bytes to store
 * (each file rounded up to the file system's block) against the free space of the backup folder.
 * A file whose allocated size is smaller than its length (sparse) counts at its allocated size.
 * The compressed type shrinks by an amount known only afterwards: it is checked against the
 * newest compressed backup of the set's ratio (bytes on disk / bytes stored), halved for safety;
 * with none, it is not refused on size (a full disk is still caught and reported as DISK_FULL).
 * Returns the bytes the backup needs (the estimate), for the DISK_FULL message.
 */
async function checkFreeSpace(
  set: SetConfig,
  dest: Destination,
  type: BackupType,
  toStore: Entry[],
): Promise<number | undefined> {
  const space = await dest.space();
  const free = space?.free;
  // Unknown: the common block size (the estimate only needs to be close).
  const bsize = space?.blockSize ?? 4096;
  const round = (n: number) => Math.ceil(n / bsize) * bsize;
  let needed = toStore.reduce((n, e) => n + round(e.size ?? 0), 0);
  if (free === undefined || needed <= free) return needed;
  // Too big at face value: count sparse files at what they really occupy before refusing.
  needed = 0;
  for (const e of toStore) {
    const st = await fs.lstat(path.join(set.source, e.path)).catch(() => undefined);
    const size = e.size ?? 0;
    needed += round(st && st.blocks * 512 < size ? st.blocks * 512 : size);
  }
  let estimate: number | undefined = needed;
  if (type === "compressed") {
    const ratio = await compressedRatio(set, dest);
    estimate = ratio === undefined ? undefined : Math.ceil((needed * ratio) / 2);
  }
  if (estimate === undefined || estimate <= free) return needed;
  throw new BschedError(
    "DISK_FULL",
    `no space left for the backup of set ${set.id} in ${dest.where}: needed ~${megabytes(estimate)}` +
      `${type === "compressed" ? ` (compressed, estimated from the previous compressed backup; ${megabytes(needed)} uncompressed)` : ""}` +
      `, free ${megabytes(free)} on ${mountPointOf(dest.where) ?? dest.where}; nothing was written`,
    { hint: diskFullHint(set, dest) },
  );
}

/** Bytes on disk per byte stored of the set's newest compressed backup, if it has one worth learning from. */
async function compressedRatio(set: SetConfig, dest: Destination): Promise<number | undefined> {
  const { backups } = await listBackups(dest, set.letter, set.id);
  for (const b of backups.reverse()) {
    const stored = b.header.totals.storedBytes;
    if (b.header.type !== "compressed" || stored < 1_000_000) continue;
    const sh = (await dest.topFiles(b.name).catch(() => [])).find((f) => f.name === `${b.name}.sh`);
    if (sh) return Math.min(1, sh.size / stored);
  }
  return undefined;
}

/** Folders a backup creates, parents first: all in a full; in an incremental the new ones and those holding new content. */
function dirsToCreate(plan: Plan, mode: BackupMode, links: Entry[]): Entry[] {
  // Nothing new in an incremental (the common no-change run): no index of the whole state.
  if (mode !== "full" && plan.newDirs.length === 0 && plan.toStore.length === 0 && links.length === 0)
    return [];
  const state = new Map(plan.entries.map((e) => [e.path, e]));
  const made = new Map<string, Entry>();
  const need = (p: string | undefined) => {
    for (let d = p; d !== undefined && !made.has(d); d = parentOf(d)) {
      const e = state.get(d);
      if (e) made.set(d, e);
    }
  };
  for (const e of mode === "full" ? plan.entries.filter((x) => x.kind === "dir") : plan.newDirs) need(e.path);
  for (const e of plan.toStore) need(parentOf(e.path));
  for (const e of links) need(parentOf(e.path));
  return [...made.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}

async function writerFor(
  type: BackupType,
  compression: Compressor,
  manifestReserve: number | undefined,
): Promise<BackupWriter> {
  if (type === "separate") return separateWriter;
  // Loaded only for this type: the separate type never needs tar's code.
  const { compressedWriter } = await import("../format/compressed/writer.ts");
  return compressedWriter(compression, { manifestReserve });
}

/** The state with a stand-in digest for each file still to store: as long as the real manifest will be. */
function draftEntries(entries: Entry[], name: string): Entry[] {
  return entries.map((e) =>
    e.kind !== "file"
      ? stripFileKeys(e)
      : !e.sha256
        ? { ...e, sha256: createHash("sha256").update(e.path).digest("hex"), from: name }
        : e,
  );
}

function stripFileKeys(e: Entry): Entry {
  const { ino: _i, ctimeNs: _c, size: _s, sha256: _h, from: _f, ...rest } = e;
  return rest;
}

/**
 * The paths of the state whose names end in `.bsched-blocks`, the block layout's suffix
 * (docs/design.md "Block incrementals"). They are backed up and restored as they are (names come
 * from the manifest), but a big file beside one (`x` and `x.bsched-blocks`) is then stored whole,
 * never as blocks, so the two cannot collide; and a folder of that name is warned about: the manual
 * procedure (apply-blocks.sh, a self-extracting file) takes every such folder for stored blocks and
 * stops at it.
 */
function blockLayoutNames(entries: Entry[], warn: (w: Warning) => void): Set<string> {
  const out = new Set<string>();
  for (const e of entries) {
    if (!e.path.endsWith(BLOCKS_SUFFIX)) continue;
    out.add(e.path);
    if (e.kind === "dir")
      warn({
        path: e.path,
        code: "UNSUPPORTED_NAME",
        message: `a folder whose name ends in ${BLOCKS_SUFFIX} is backed up and restored by bsched, but the manual procedure (apply-blocks.sh, the self-extracting file) would take it for stored blocks and stop; rename it`,
      });
  }
  return out;
}
