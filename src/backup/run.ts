import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import type {
  BackupMode,
  BackupSummary,
  BackupType,
  Entry,
  Manifest,
  ParentRef,
  ProgressCallback,
  Totals,
  Warning,
} from "../core/types.ts";
import { listFolder, readManifest, removeLeftovers } from "../destination/local/folder.ts";
import type { Clock } from "../platform/clock.ts";
import { fsyncDir, pathExists, syncTree, tempName, writeFileAtomic } from "../platform/fsutil.ts";
import { hostName } from "../platform/host.ts";
import { acquireLock } from "../platform/lockfile.ts";
import { type ChainLink, resolveChain } from "../snapshot/chain.ts";
import { type Plan, planBackup } from "../snapshot/diff.ts";
import { MANIFEST_FILE, serializeManifest, summarize } from "../snapshot/manifest.ts";
import { backupBaseName, uniqueName } from "../snapshot/naming.ts";
import { parentOf } from "../snapshot/paths.ts";
import { consistentReader, liveSource } from "../source/consistent-reader.ts";
import { scanTree } from "../source/scan.ts";
import { lockFolder } from "../source/setlock.ts";
import { VERSION } from "../version.ts";
import type { Compressor } from "../writer/compressed/frames.ts";
import { separateWriter } from "../writer/separate.ts";
import type { BackupWriter, WriteJob } from "../writer/types.ts";
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
}

/** In the backup's temporary folder: SQLite snapshots waiting to be stored; gone before the manifest. */
const SCRATCH_DIR = ".scratch";

export interface BackupResult {
  summary: BackupSummary;
  warnings: Warning[];
  /** Crashed runs' leftovers removed before this run. */
  cleaned: string[];
}

/** The parent of a new incremental: the newest complete backup of the set, if its chain is whole. */
async function findParent(set: SetConfig, warn: (w: Warning) => void) {
  const { backups } = await listFolder(set.folder, set.letter, set.id);
  const newest = backups.at(-1);
  if (!newest) return undefined;
  try {
    // Every ancestor must be there, complete; their digests are checked by restore and verify,
    // not here: hashing every manifest of a long chain at each backup would grow without bound.
    const byName = new Map(backups.map((b) => [b.name, { ...b, digest: "" }]));
    const chain = await resolveChain(byName.get(newest.name) as ChainLink, async (n) => byName.get(n), {
      checkDigests: false,
    });
    const ref = await readManifest(newest.path);
    return { ref, digest: ref.digest, chainLength: chain.length, ancestors: chain.map((l) => l.name) };
  } catch (e) {
    warn({
      path: newest.name,
      code: "CHAIN_BROKEN",
      message: `the newest backup's chain cannot be used (${(e as Error).message}); making a full backup instead`,
    });
    return undefined;
  }
}

/** When the parent's folder was made, on the file system's own clock (isRacy in src/snapshot/diff.ts). */
async function bornNs(dir: string): Promise<bigint | undefined> {
  const born = (await fs.stat(dir, { bigint: true })).birthtimeNs;
  return born > 0n ? born : undefined;
}

function totalsOf(entries: Entry[], name: string, deletions: number): Totals {
  const t: Totals = { files: 0, dirs: 0, symlinks: 0, bytes: 0, storedFiles: 0, storedBytes: 0, deletions };
  for (const e of entries) {
    if (e.kind === "file") {
      t.files++;
      t.bytes += e.size ?? 0;
      if (e.from === name) {
        t.storedFiles++;
        t.storedBytes += e.size ?? 0;
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
  const held = isDir ? await lockFolder(set.source, `backup of set ${set.id}`, opts.clock) : undefined;
  if (held?.reason) {
    const w = {
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
      () => backupSet(opts, early),
      (r) => ({ status: r.warnings.length > 0 ? "warnings" : "success", backup: r.summary.name }),
    );
    for (const f of afterFailures) {
      // The manifest is written: the warning reaches the exit code and the log, not the backup.
      const w = { path: ".", code: "HOOK_FAILED", message: `${f}; the backup itself is complete` };
      result.warnings.push(w);
      opts.onWarning?.(w);
    }
    return result;
  } finally {
    await held?.lock?.release();
  }
}

async function backupSet(opts: BackupOptions, early: Warning[]): Promise<BackupResult> {
  const { set, clock } = opts;
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
  await fs.mkdir(set.folder, { recursive: true });
  const lock = await acquireLock(
    path.join(set.folder, `.bsched-${set.id}.lock`),
    `backup of set ${set.id}`,
    clock,
  );
  const warnings: Warning[] = [...early];
  const warn = (w: Warning) => {
    warnings.push(w);
    opts.onWarning?.(w);
  };
  let tmp: string | undefined;
  try {
    const cleaned = await removeLeftovers(set.folder, set.letter);
    const started = clock.now();
    const found = wantMode === "incremental" ? await findParent(set, warn) : undefined;
    // The set's own mode follows its full cadence; an explicit --mode is done as asked.
    const cadenceFull = opts.mode === undefined && found && fullIsDue(set.fullEvery, found.chainLength);
    const parent = cadenceFull ? undefined : found;
    const mode: BackupMode = parent ? "incremental" : "full";

    const scan = await liveSource(
      set.source,
      await scanTree(set.source, (n) =>
        opts.onProgress?.({ phase: "scan", files: n, bytes: 0, totalFiles: 0, totalBytes: 0 }),
      ),
    );
    for (const w of scan.warnings) warn(w);
    const plan = planBackup(
      scan.entries,
      parent?.ref.manifest.entries,
      parent && (await bornNs(parent.ref.path)),
    );

    const existing = new Set(await fs.readdir(set.folder));
    const name = uniqueName(backupBaseName(set.letter, started, opts.timezone), (n) => existing.has(n));
    tmp = path.join(set.folder, tempName(name));
    await fs.mkdir(tmp);

    const totalBytes = plan.toStore.reduce((n, e) => n + (e.size ?? 0), 0);
    const progress = {
      phase: "copy" as const,
      files: 0,
      bytes: 0,
      totalFiles: plan.toStore.length,
      totalBytes,
    };
    const links = mode === "full" ? plan.entries.filter((x) => x.kind === "symlink") : plan.newSymlinks;
    const parentRef: ParentRef | null = parent ? { name: parent.ref.name, digest: parent.digest } : null;
    const makeManifest = (entries: Entry[], finishedAt: Date): Manifest => ({
      format: "bsched-manifest",
      formatVersion: 1,
      tool: { name: "bsched", version: VERSION },
      host: hostName(),
      set: set.id,
      letter: set.letter,
      name,
      type,
      mode,
      timezone: opts.timezone,
      startedAt: started.toISOString(),
      finishedAt: finishedAt.toISOString(),
      parent: parentRef,
      entries,
      deletions: plan.deletions,
      totals: totalsOf(entries, name, plan.deletions.length),
      warnings,
    });
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
      onBytes: (n) => {
        progress.bytes += n;
      },
      onFile: (e) => {
        progress.files++;
        opts.onProgress?.({ ...progress, current: e.path });
        testPauseAfterFiles(progress.files);
      },
    };
    const writer = await writerFor(type, set.compression);
    const { stored, failed } = await writer.write(job);
    await fs.rm(path.join(tmp, SCRATCH_DIR), { recursive: true, force: true });

    const parentState = new Map((parent?.ref.manifest.entries ?? []).map((e) => [e.path, e]));
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
    const manifest = makeManifest(entries, clock.now());
    const manifestText = serializeManifest(manifest);
    await writer.finish(job, manifest, manifestText);
    await syncTree(tmp);
    await writeFileAtomic(path.join(tmp, MANIFEST_FILE), manifestText);
    const final = path.join(set.folder, name);
    if (await pathExists(final)) {
      throw new BschedError("IO", `backup folder ${final} appeared during the run`, {
        hint: "run the backup again",
      });
    }
    await fs.rename(tmp, final);
    tmp = undefined;
    await fsyncDir(set.folder);
    opts.onProgress?.({ ...progress, phase: "done" });
    const { entries: _e, deletions: _d, ...header } = manifest;
    return { summary: summarize(header, final), warnings, cleaned };
  } finally {
    if (tmp) await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    await lock.release();
  }
}

/** Folders a backup creates, parents first: all in a full; in an incremental the new ones and those holding new content. */
function dirsToCreate(plan: Plan, mode: BackupMode, links: Entry[]): Entry[] {
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

async function writerFor(type: BackupType, compression: Compressor): Promise<BackupWriter> {
  if (type === "separate") return separateWriter;
  // Loaded only for this type: the separate type never needs tar's code.
  const { compressedWriter } = await import("../writer/compressed/writer.ts");
  return compressedWriter(compression);
}

/** The state with a stand-in digest for each file still to store: as long as the real manifest will be. */
function draftEntries(entries: Entry[], name: string): Entry[] {
  return entries.map((e) =>
    e.kind === "file" && !e.sha256
      ? { ...e, sha256: createHash("sha256").update(e.path).digest("hex"), from: name }
      : e,
  );
}

function stripFileKeys(e: Entry): Entry {
  const { ino: _i, ctimeNs: _c, size: _s, sha256: _h, from: _f, ...rest } = e;
  return rest;
}

/**
 * Fault injection for test/crash.test.ts only: with BSCHED_TEST_PAUSE_AFTER_FILES=N the run
 * announces itself after N stored files and blocks its thread for good, so the test can
 * `kill -9` it at a known point mid-run. Unset in production: a no-op.
 */
function testPauseAfterFiles(files: number): void {
  if (files !== Number(process.env.BSCHED_TEST_PAUSE_AFTER_FILES)) return;
  process.stderr.write("bsched-test: paused\n");
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}
