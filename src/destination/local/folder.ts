import fs from "node:fs/promises";
import path from "node:path";
import { BschedError, errnoCode } from "../../core/errors.ts";
import type { BackupRef } from "../../core/types.ts";
import { readRegular } from "../../platform/fsutil.ts";
import type { ChainLink } from "../../snapshot/chain.ts";
import {
  checkFolderName,
  digestOf,
  MANIFEST_FILE,
  type ManifestHeader,
  parseHeaderLine,
  readManifest,
  readManifestHeader,
} from "../../snapshot/manifest.ts";
import { isBackupName } from "../../snapshot/naming.ts";

/** A complete backup as seen from its folder's header line, without reading its entries. */
export interface FoundBackup {
  name: string;
  path: string;
  header: ManifestHeader;
}

export interface FolderListing {
  backups: FoundBackup[];
  /** Folders named like backups of this letter that have no readable manifest: never used. */
  incomplete: { name: string; path: string; reason: string; code?: string }[];
}

export function byAge(a: FoundBackup, b: FoundBackup): number {
  return a.header.startedAt < b.header.startedAt
    ? -1
    : a.header.startedAt > b.header.startedAt
      ? 1
      : a.name < b.name
        ? -1
        : 1;
}

/** The complete backups of one letter (and set, when given) in a backup folder, oldest first. */
export async function listFolder(folder: string, letter: string, set?: string): Promise<FolderListing> {
  let names: string[];
  try {
    names = await fs.readdir(folder);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return { backups: [], incomplete: [] };
    throw e;
  }
  const backups: FoundBackup[] = [];
  const incomplete: FolderListing["incomplete"] = [];
  await Promise.all(
    names
      .filter((n) => isBackupName(n, letter))
      .map(async (name) => {
        const dir = path.join(folder, name);
        try {
          const header = await readManifestHeader(dir);
          checkFolderName(header, dir);
          // Letters are unique among the sets, so a folder of this letter naming another set is
          // foreign or forged: shown as not usable, never silently skipped nor used.
          if (set !== undefined && header.set !== set) {
            throw new BschedError(
              "MANIFEST_INVALID",
              `${path.join(dir, MANIFEST_FILE)}: its manifest is of set ${header.set}, but letter ${letter} is set ${set}'s`,
            );
          }
          backups.push({ name, path: dir, header });
        } catch (e) {
          if (errnoCode(e) === "ENOTDIR") return;
          const code = e instanceof BschedError ? e.code : errnoCode(e);
          incomplete.push({ name, path: dir, reason: (e as Error).message, code });
        }
      }),
  );
  backups.sort(byAge);
  incomplete.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { backups, incomplete };
}

/**
 * One backup of a chain, with the digest of its manifest; undefined when the folder or its
 * manifest is missing (a damaged manifest is an error that names it).
 */
export async function loadLink(folder: string, name: string): Promise<ChainLink | undefined> {
  if (!isBackupName(name)) return undefined;
  const dir = path.join(folder, name);
  const file = path.join(dir, MANIFEST_FILE);
  let bytes: Buffer;
  try {
    bytes = await readRegular(file);
  } catch (e) {
    const code = errnoCode(e);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw e;
  }
  const nl = bytes.indexOf(10);
  const header = parseHeaderLine(bytes.subarray(0, nl < 0 ? bytes.length : nl).toString("utf8"), file);
  checkFolderName(header, dir);
  return { name, path: dir, header, digest: digestOf(bytes) };
}

export type { BackupRef };
export { readManifest };

/**
 * Remove what a crashed run of this letter left: temporary folders `.<L>_….tmp-*`. Only the
 * holder of the set's lock calls this, so no live run can own them.
 */
export async function removeLeftovers(folder: string, letter: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(folder);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return [];
    throw e;
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = /^\.(.+)\.tmp-\d+-[0-9a-f]+$/.exec(n);
    if (m?.[1] && isBackupName(m[1], letter)) {
      await fs.rm(path.join(folder, n), { recursive: true, force: true });
      removed.push(n);
    }
  }
  return removed;
}
