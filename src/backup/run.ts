import fs from "node:fs/promises";
import path from "node:path";
import type { SetConfig } from "../config/load.ts";
import { BschedError, errnoCode } from "../core/errors.ts";
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
import { listFolder, loadLink, readManifest, removeLeftovers } from "../destination/local/folder.ts";
import type { Clock } from "../platform/clock.ts";
import {
  forEachLimit,
  fsyncDir,
  pathExists,
  syncTree,
  tempName,
  writeFileAtomic,
} from "../platform/fsutil.ts";
import { hostName } from "../platform/host.ts";
import { acquireLock } from "../platform/lockfile.ts";
import { resolveChain } from "../snapshot/chain.ts";
import { planBackup } from "../snapshot/diff.ts";
import { FILES_DIR, MANIFEST_FILE, serializeManifest, summarize } from "../snapshot/manifest.ts";
import { backupBaseName, uniqueName } from "../snapshot/naming.ts";
import { parentOf } from "../snapshot/paths.ts";
import { scanTree } from "../source/scan.ts";
import { VERSION } from "../version.ts";
import { finishDirs, makeDir, makeSymlink, storeFile } from "../writer/separate.ts";

export interface BackupOptions {
  set: SetConfig;
  timezone: string;
  clock: Clock;
  mode?: BackupMode;
  type?: BackupType;
  onProgress?: ProgressCallback;
  onWarning?: (w: Warning) => void;
  /** Files copied at once. */
  concurrency?: number;
}

export interface BackupResult {
  summary: BackupSummary;
  warnings: Warning[];
  /** Crashed runs' leftovers removed before this run. */
  cleaned: string[];
}

const COPY_CONCURRENCY = 8;

/** The parent of a new incremental: the newest complete backup of the set, if its chain is whole. */
async function findParent(set: SetConfig, warn: (w: Warning) => void) {
  const { backups } = await listFolder(set.folder, set.letter, set.id);
  const newest = backups.at(-1);
  if (!newest) return undefined;
  try {
    const link = await loadLink(set.folder, newest.name);
    if (!link) return undefined;
    await resolveChain(link, (n) => loadLink(set.folder, n));
    return { ref: await readManifest(newest.path), digest: link.digest };
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
        t.storedBytes += e.size ?? 0;
      }
    } else if (e.kind === "dir") t.dirs++;
    else t.symlinks++;
  }
  return t;
}

export async function runBackup(opts: BackupOptions): Promise<BackupResult> {
  const { set, clock } = opts;
  const type = opts.type ?? set.type;
  const wantMode = opts.mode ?? set.mode;
  if (type !== "separate") {
    throw new BschedError("USAGE", `type "${type}" is not available yet in this version`, {
      hint: "use type separate",
    });
  }
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
  const warnings: Warning[] = [];
  const warn = (w: Warning) => {
    warnings.push(w);
    opts.onWarning?.(w);
  };
  let tmp: string | undefined;
  try {
    const cleaned = await removeLeftovers(set.folder, set.letter);
    const started = clock.now();
    const parent = wantMode === "incremental" ? await findParent(set, warn) : undefined;
    const mode: BackupMode = parent ? "incremental" : "full";

    const scan = await scanTree(set.source, (n) =>
      opts.onProgress?.({ phase: "scan", files: n, bytes: 0, totalFiles: 0, totalBytes: 0 }),
    );
    for (const w of scan.warnings) warn(w);
    const plan = planBackup(scan.entries, parent?.ref.manifest.entries);

    const existing = new Set(await fs.readdir(set.folder));
    const name = uniqueName(backupBaseName(set.letter, started, opts.timezone), (n) => existing.has(n));
    tmp = path.join(set.folder, tempName(name));
    const filesRoot = path.join(tmp, FILES_DIR);
    await fs.mkdir(filesRoot, { recursive: true });

    // Folders first (every folder in a full; in an incremental the new ones and those that hold new content).
    const state = new Map(plan.entries.map((e) => [e.path, e]));
    const madeDirs = new Map<string, Entry>();
    const needDir = (p: string | undefined) => {
      for (let d = p; d !== undefined && !madeDirs.has(d); d = parentOf(d)) {
        const e = state.get(d);
        if (e) madeDirs.set(d, e);
      }
    };
    for (const e of mode === "full" ? plan.entries.filter((x) => x.kind === "dir") : plan.newDirs)
      needDir(e.path);
    for (const e of plan.toStore) needDir(parentOf(e.path));
    const links = mode === "full" ? plan.entries.filter((x) => x.kind === "symlink") : plan.newSymlinks;
    for (const e of links) needDir(parentOf(e.path));
    const dirList = [...madeDirs.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
    for (const d of dirList) await makeDir(path.join(filesRoot, d.path));

    const totalBytes = plan.toStore.reduce((n, e) => n + (e.size ?? 0), 0);
    const progress = {
      phase: "copy" as const,
      files: 0,
      bytes: 0,
      totalFiles: plan.toStore.length,
      totalBytes,
    };
    const stored = new Map<string, Entry>();
    const dropped = new Set<string>();
    const parentState = new Map((parent?.ref.manifest.entries ?? []).map((e) => [e.path, e]));
    await forEachLimit(plan.toStore, opts.concurrency ?? COPY_CONCURRENCY, async (e) => {
      try {
        const r = await storeFile(path.join(set.source, e.path), path.join(filesRoot, e.path), e, (n) => {
          progress.bytes += n;
        });
        stored.set(e.path, { ...r.entry, from: name });
        if (r.changedWhileRead) {
          warn({
            path: e.path,
            code: "CHANGED_WHILE_READ",
            message: "file changed while it was read; the copy may be inconsistent",
          });
        }
      } catch (err) {
        const code = errnoCode(err);
        if (
          code !== "ENOENT" &&
          code !== "EACCES" &&
          code !== "EPERM" &&
          code !== "ELOOP" &&
          code !== "EISDIR"
        )
          throw err;
        const old = parentState.get(e.path);
        const kept = old?.kind === "file" ? "; the previous backup's copy is kept" : "";
        warn({
          path: e.path,
          code: code === "ENOENT" ? "VANISHED" : "UNREADABLE",
          message: `${(err as Error).message}${kept}`,
        });
        if (old?.kind === "file") stored.set(e.path, old);
        else dropped.add(e.path);
        await fs.rm(path.join(filesRoot, e.path), { force: true });
      }
      progress.files++;
      opts.onProgress?.({ ...progress, current: e.path });
    });
    for (const e of links) await makeSymlink(e, path.join(filesRoot, e.path));
    await finishDirs(filesRoot, dirList);

    const entries: Entry[] = [];
    for (const e of plan.entries) {
      if (dropped.has(e.path)) continue;
      const s = e.kind === "file" && !e.sha256 ? stored.get(e.path) : e;
      if (!s) continue;
      entries.push(s.kind === "file" ? s : stripFileKeys(s));
    }
    const parentRef: ParentRef | null = parent ? { name: parent.ref.name, digest: parent.digest } : null;
    const manifest: Manifest = {
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
      finishedAt: clock.now().toISOString(),
      parent: parentRef,
      entries,
      deletions: plan.deletions,
      totals: totalsOf(entries, name, plan.deletions.length),
      warnings,
    };
    await syncTree(tmp);
    await writeFileAtomic(path.join(tmp, MANIFEST_FILE), serializeManifest(manifest));
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

function stripFileKeys(e: Entry): Entry {
  const { ino: _i, ctimeNs: _c, size: _s, sha256: _h, from: _f, ...rest } = e;
  return rest;
}
