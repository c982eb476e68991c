import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { Catalog } from "../catalog/catalog.ts";
import type { SetConfig } from "../config/load.ts";
import { BschedError, errnoCode } from "../core/errors.ts";
import { assessFolder, diskBytesOf, ensureBackupFolder } from "../destination/local/folder.ts";
import type { Clock } from "../platform/clock.ts";
import { fsyncDir } from "../platform/fsutil.ts";
import { acquireLock } from "../platform/lockfile.ts";
import { runLockName } from "../platform/names.ts";
import { isBackupName } from "../snapshot/naming.ts";
import { planRetention, type RetentionPlan } from "./policy.ts";

export interface PruneResult {
  set: string;
  dryRun: boolean;
  plan: RetentionPlan;
  /** Backups actually deleted (empty on a dry run). */
  removed: string[];
  /** Bytes the removed backups stored themselves. */
  freedBytes: number;
  /** `--broken`: only unrestorable backups were considered, each removed with its reason. */
  brokenOnly: boolean;
}

const DELETING_RE = /^\.(.+)\.deleting-\d+-[0-9a-f]+$/;

/**
 * Delete one backup folder so that a crash at any point never leaves something that looks like
 * a backup: first rename it to a hidden `.<name>.deleting-…` (one atomic step), then remove that.
 */
export async function deleteBackupFolder(folder: string, name: string): Promise<void> {
  const doomed = path.join(folder, `.${name}.deleting-${process.pid}-${randomBytes(4).toString("hex")}`);
  await fs.rename(path.join(folder, name), doomed);
  await fsyncDir(folder);
  await fs.rm(doomed, { recursive: true, force: true });
}

async function removeDeletingLeftovers(folder: string, letter: string): Promise<void> {
  const names = await fs.readdir(folder).catch((e) => {
    if (errnoCode(e) === "ENOENT") return [] as string[];
    throw e;
  });
  for (const n of names) {
    const m = DELETING_RE.exec(n);
    if (m?.[1] && isBackupName(m[1], letter))
      await fs.rm(path.join(folder, n), { recursive: true, force: true });
  }
}

/**
 * Apply the set's `keep` policy under the set's lock (so no backup runs meanwhile). Deletes
 * newest first: at every moment each remaining backup's chain is whole. Backups that cannot be
 * restored are kept and listed in `plan.broken`; with `brokenOnly` (`prune --broken`) those, and
 * only those, are deleted instead (no keep policy needed).
 */
export async function pruneSet(
  set: SetConfig,
  opts: {
    timezone: string;
    clock: Clock;
    dryRun?: boolean;
    catalog?: Catalog | undefined;
    brokenOnly?: boolean;
  },
): Promise<PruneResult> {
  const brokenOnly = opts.brokenOnly === true;
  if (!set.keep && !brokenOnly) {
    throw new BschedError("USAGE", `set "${set.id}" has no keep policy: every backup is kept`, {
      hint: `add sets.${set.id}.keep (e.g. keep: { daily: 7, weekly: 4, monthly: 12 }) to the config`,
    });
  }
  const policy = set.keep;
  const plan = async (): Promise<{ plan: RetentionPlan; stored: Map<string, number> }> => {
    const backups = await assessFolder(set.folder, set.letter, set.id);
    const items = backups.map((b) => ({
      name: b.name,
      startedAt: b.header?.startedAt ?? "",
      parent: b.header?.parent?.name ?? null,
      broken: b.state === "broken" ? b.reason : undefined,
    }));
    // What deleting it frees: its size on disk, not the logical size it stores (issue 9); a
    // folder without a readable manifest counts 0 (its type, hence its layout, is unknown).
    const stored = new Map(
      await Promise.all(
        backups.map(async (b) => [b.name, b.header ? await diskBytesOf(b.path, b.header) : 0] as const),
      ),
    );
    if (brokenOnly) {
      // Newest first as the policy does; every one of them is unrestorable already.
      const broken = planRetention(items, { last: Number.MAX_SAFE_INTEGER }, opts.timezone).broken;
      // A whole backup of another set (a set renamed while keeping its letter) restores with
      // --from: it is shown as broken for this set but never deleted, not even by --broken.
      const foreign = new Set(backups.filter((b) => b.foreignSet !== undefined).map((b) => b.name));
      const remove = broken.map((b) => b.name).filter((n) => !foreign.has(n));
      return { plan: { keep: [], remove, reasons: {}, broken }, stored };
    }
    return { plan: planRetention(items, policy ?? {}, opts.timezone), stored };
  };
  if (opts.dryRun) {
    const p = await plan();
    return { set: set.id, dryRun: true, plan: p.plan, removed: [], freedBytes: 0, brokenOnly };
  }
  // Never create a specific folder's parents (an unmounted disk): see ensureBackupFolder.
  await ensureBackupFolder(set.folder, set.folderAnchor ?? path.dirname(set.folder), {
    set: set.id,
    key: set.folderKey ?? `sets.${set.id}.folder`,
  });
  const lock = await acquireLock(
    path.join(set.folder, runLockName(set.id)),
    `prune of set ${set.id}`,
    opts.clock,
  );
  try {
    await removeDeletingLeftovers(set.folder, set.letter);
    const p = await plan();
    const removed: string[] = [];
    let freedBytes = 0;
    for (const name of p.plan.remove) {
      await deleteBackupFolder(set.folder, name);
      opts.catalog?.removeBackup(set.id, name);
      removed.push(name);
      freedBytes += p.stored.get(name) ?? 0;
    }
    return { set: set.id, dryRun: false, plan: p.plan, removed, freedBytes, brokenOnly };
  } finally {
    await lock.release();
  }
}
