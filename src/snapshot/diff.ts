import type { Entry } from "../core/types.ts";

/**
 * The change-detection rule (docs/design.md): a file is unchanged since the parent when its
 * size, mtime, ctime and inode number all match the parent's record. ctime cannot be set by
 * user space, so a rewrite that kept size and mtime (`touch -r`) still changes it, as git and
 * restic rely on.
 */
export function isUnchanged(now: Entry, before: Entry | undefined): boolean {
  return (
    before !== undefined &&
    before.kind === "file" &&
    now.kind === "file" &&
    before.size === now.size &&
    before.mtimeNs === now.mtimeNs &&
    before.ctimeNs === now.ctimeNs &&
    before.ino === now.ino &&
    before.sha256 !== undefined &&
    before.from !== undefined
  );
}

/**
 * A parent record cannot prove a file unchanged when its ctime lies within one timestamp tick
 * of the parent's run (`parentBornNs`: when the parent's folder was made, before it read any
 * file): a same-size write in the same tick right after the read leaves size, mtime and ctime
 * as recorded ("racily clean", as git calls it). Such a file is read again. The tick: 2 s where
 * ctimes are whole seconds (ext3, FAT, old NFS), else 50 ms (a kernel's coarse clock).
 */
export function isRacy(before: Entry | undefined, parentBornNs: bigint | undefined): boolean {
  if (parentBornNs === undefined || before?.ctimeNs === undefined) return false;
  const ctime = BigInt(before.ctimeNs);
  const tick = ctime % 1_000_000_000n === 0n ? 2_000_000_000n : 50_000_000n;
  return ctime >= parentBornNs - tick;
}

export interface Plan {
  /** The new state: unchanged files already carry the parent's sha256 and `from`. */
  entries: Entry[];
  /** Files whose content this backup must store. */
  toStore: Entry[];
  /** Folders new or changed (mode, mtime) and symlinks new or retargeted since the parent: an incremental holds them. */
  newDirs: Entry[];
  newSymlinks: Entry[];
  /** Paths of the parent's state to remove before applying this backup: gone, or now of another kind. */
  deletions: string[];
}

/** `parent`: the parent's state, by path (a list is indexed here; a backup passes the map it keeps). */
export function planBackup(
  scanned: Entry[],
  parent: Entry[] | ReadonlyMap<string, Entry> | undefined,
  parentBornNs?: bigint,
): Plan {
  const before: ReadonlyMap<string, Entry> =
    parent === undefined || Array.isArray(parent) ? new Map((parent ?? []).map((e) => [e.path, e])) : parent;
  const toStore: Entry[] = [];
  const newDirs: Entry[] = [];
  const newSymlinks: Entry[] = [];
  const deletions: string[] = [];
  const entries = scanned.map((e) => {
    const old = before.get(e.path);
    // Removed before applying this backup by hand: a path that changed kind, or a symlink that
    // changed target (tar will not always replace a link in place).
    if (old && (old.kind !== e.kind || (e.kind === "symlink" && old.target !== e.target)))
      deletions.push(e.path);
    if (e.kind === "file") {
      if (isUnchanged(e, old) && !isRacy(old, parentBornNs))
        // A block map goes along: the content may be blocks in several backups (snapshot/blocks.ts).
        return { ...e, sha256: old?.sha256, from: old?.from, ...(old?.blocks ? { blocks: old.blocks } : {}) };
      toStore.push(e);
    } else if (e.kind === "dir") {
      if (old?.kind !== "dir" || old.mode !== e.mode || old.mtimeNs !== e.mtimeNs) newDirs.push(e);
    } else if (old?.kind !== "symlink" || old.target !== e.target) {
      newSymlinks.push(e);
    }
    return e;
  });
  if (parent) {
    const present = new Set(scanned.map((e) => e.path));
    for (const p of before.keys()) if (!present.has(p)) deletions.push(p);
    deletions.sort();
  }
  return { entries, toStore, newDirs, newSymlinks, deletions };
}
