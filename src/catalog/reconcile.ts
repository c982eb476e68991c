import fs from "node:fs/promises";
import path from "node:path";
import type { Config, SetConfig } from "../config/load.ts";
import { diskBytesOf, type FoundBackup, listBackups } from "../destination/backups.ts";
import { destinationOf } from "../destination/for-set.ts";
import type { BackupRecord, Catalog } from "./catalog.ts";
import { CATALOG_FILE, openSqliteCatalog } from "./sqlite/sqlite-catalog.ts";

export function catalogFile(config: Config): string {
  return path.join(config.state, CATALOG_FILE);
}

export function openCatalog(config: Config): Catalog {
  return openSqliteCatalog(catalogFile(config));
}

export async function recordOf(set: string, b: FoundBackup): Promise<BackupRecord> {
  const h = b.header;
  return {
    set,
    name: b.name,
    destination: b.dest.name,
    type: h.type,
    mode: h.mode,
    parent: h.parent?.name ?? null,
    startedAt: h.startedAt,
    finishedAt: h.finishedAt,
    files: h.totals.files,
    bytes: h.totals.bytes,
    storedBytes: h.totals.storedBytes,
    diskBytes: await diskBytesOf(b.dest, b.name, h),
    warnings: h.warnings.length,
  };
}

export interface Repair {
  set: string;
  added: string[];
  removed: string[];
  updated: string[];
}

/**
 * Make the catalog's backups agree with the folders, which are the truth: a backup on disk the
 * catalog lacks is added, one the catalog lists but the disk lacks is dropped, a differing row is
 * rewritten.
 */
export async function reconcileSet(catalog: Catalog, set: SetConfig): Promise<Repair> {
  const dest = destinationOf(set);
  const { backups } = await listBackups(dest, set.letter, set.id);
  const onDisk = new Map<string, BackupRecord>();
  for (const b of backups) onDisk.set(b.name, await recordOf(set.id, b));
  // Only the records of this destination: another's are that destination's to repair.
  const known = new Map(
    catalog
      .backups(set.id)
      .filter((b) => b.destination === dest.name)
      .map((b) => [b.name, b]),
  );
  const r: Repair = { set: set.id, added: [], removed: [], updated: [] };
  for (const [name, rec] of onDisk) {
    const had = known.get(name);
    if (!had) {
      catalog.putBackup(rec);
      r.added.push(name);
    } else if (JSON.stringify(had) !== JSON.stringify(rec)) {
      catalog.putBackup(rec);
      r.updated.push(name);
    }
  }
  for (const name of known.keys()) {
    if (!onDisk.has(name)) {
      catalog.removeBackup(set.id, name, dest.name);
      r.removed.push(name);
    }
  }
  return r;
}

export async function reconcile(catalog: Catalog, config: Config): Promise<Repair[]> {
  const out: Repair[] = [];
  for (const set of config.sets.values()) out.push(await reconcileSet(catalog, set));
  return out;
}

/**
 * Recreate the catalog from the backup folders alone: the old file is moved aside (kept as
 * `catalog.db.old-<time>` for inspection), a new one gets every backup, one `rebuild` run per
 * backup, and a schedule mark at each set's newest backup so a missed slot after it still runs once.
 */
export async function rebuildCatalog(
  config: Config,
  now: Date,
): Promise<{ file: string; backups: number; movedAside: string | undefined }> {
  const file = catalogFile(config);
  let movedAside: string | undefined;
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  for (const ext of ["", "-wal", "-shm"]) {
    const aside = `${file}.old-${stamp}${ext}`;
    try {
      await fs.rename(`${file}${ext}`, aside);
      if (ext === "") movedAside = aside;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
  const catalog = openSqliteCatalog(file);
  let count = 0;
  try {
    for (const set of config.sets.values()) {
      const { backups } = await listBackups(destinationOf(set), set.letter, set.id);
      for (const b of backups) {
        catalog.putBackup(await recordOf(set.id, b));
        const id = catalog.startRun({
          set: set.id,
          planned: null,
          trigger: "rebuild",
          startedAt: b.header.startedAt,
        });
        catalog.finishRun(id, {
          finishedAt: b.header.finishedAt,
          status: b.header.warnings.length > 0 ? "warnings" : "ok",
          warnings: b.header.warnings.length,
          files: b.header.totals.files,
          bytes: b.header.totals.bytes,
          backup: b.name,
        });
        count++;
      }
      const newest = backups.at(-1);
      if (newest) catalog.markPlanned(set.id, newest.header.startedAt);
    }
  } finally {
    catalog.close();
  }
  return { file, backups: count, movedAside };
}
