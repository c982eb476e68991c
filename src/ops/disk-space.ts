import type { Catalog } from "../catalog/catalog.ts";
import { OWN_FOLDER } from "../catalog/catalog.ts";
import type { Config, SetConfig } from "../config/load.ts";
import { freeBytes } from "../platform/disk.ts";

/**
 * Whether each set's backup folder has room for its next full backup (issue 14, "time and disk
 * awareness"). The estimate is the set's last full backup's size on disk, from the catalog (its
 * stored bytes when the disk size is not known yet): a set's data grows slowly, so the last full is
 * the best cheap guess, and reading it never walks a folder. What the daemon logs, `bsched status`
 * shows, /metrics exports, and an email "disk nearly full" event can call.
 */
export interface DiskCheck {
  set: string;
  /** The set's backup folder (local folders only: a remote destination's space is not measured). */
  folder: string;
  /** Bytes free there for bsched; null when it could not be measured (`error` says why). */
  free: number | null;
  /** The next full's estimated size: the last full's, null while the set has no full backup. */
  nextFull: number | null;
  /** The last full backup the estimate comes from. */
  from: string | null;
  /** true: free < nextFull, the next full may not fit. */
  low: boolean;
  error?: string;
}

/** Sets whose backups are in a local folder (a path, or a destination of type local). */
export function localFolderSets(config: Config): SetConfig[] {
  return [...config.sets.values()].filter(
    (s) => s.folderSpec === undefined || s.folderSpec.config.type === "local",
  );
}

/** The last full backup of the set in its own folder, as the catalog knows it. */
export function lastFull(catalog: Catalog, set: string): { name: string; bytes: number } | undefined {
  const full = catalog
    .backups(set)
    .filter((b) => b.destination === OWN_FOLDER && b.mode === "full")
    .at(-1);
  return full && { name: full.name, bytes: full.diskBytes ?? full.storedBytes };
}

/** Measures a folder's free bytes: statfs (freeBytes), or a test's disk of a chosen size. */
export type DiskFree = (folder: string) => Promise<number>;

/** One statfs per distinct folder and one catalog read per set: cheap at every scrape. */
export async function checkDiskSpace(
  config: Config,
  catalog: Catalog,
  measure: DiskFree = freeBytes,
): Promise<DiskCheck[]> {
  const free = new Map<string, Promise<number>>();
  const out: DiskCheck[] = [];
  for (const set of localFolderSets(config)) {
    let f = free.get(set.folder);
    if (!f) {
      f = measure(set.folder);
      free.set(set.folder, f);
    }
    const full = lastFull(catalog, set.id);
    const base = { set: set.id, folder: set.folder, nextFull: full?.bytes ?? null, from: full?.name ?? null };
    try {
      const bytes = await f;
      out.push({ ...base, free: bytes, low: full !== undefined && bytes < full.bytes });
    } catch (e) {
      out.push({ ...base, free: null, low: false, error: (e as Error).message });
    }
  }
  return out;
}

/** The log line (and status's warning) for a low folder. */
export function diskLowMessage(c: DiskCheck): string {
  return `the backup folder ${c.folder} has ${bytes(c.free ?? 0)} free, less than the next full backup of set ${c.set} is expected to take (${bytes(c.nextFull ?? 0)}, the size of ${c.from})`;
}

/** 1 234 567 → "1.2 MB" (decimal units, as `bsched status` shows sizes). */
function bytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** What to do about it, for the hint beside the message. */
export const DISK_LOW_HINT =
  "free space on that disk, keep fewer backups (`keep:` and `bsched prune SET`), or move the set's folder to a larger disk";
