import { BschedError } from "../core/errors.ts";
import type { BlockMap, Entry, Manifest } from "../core/types.ts";
import { comparePaths } from "./paths.ts";

/**
 * A backup's state from its chain (docs/design.md "Manifest"): a format-3 incremental's manifest
 * lists only the entries whose record differs from its parent's state, plus `deletions`; every
 * other manifest (a full, any of formats 1 and 2) holds a whole state. The one place that turns
 * a chain's manifests into the state that restore, verify, browse and the next backup use.
 */

/** Whether a manifest's entries are only changes since its parent's state. */
export function holdsChanges(m: Pick<Manifest, "holds">): boolean {
  return m.holds === "changes";
}

/**
 * Of a chain (oldest first, by header), the index of the first manifest the newest's state needs:
 * the newest one holding a whole state. Only it and the manifests after it are read.
 */
export function firstNeeded(headers: Pick<Manifest, "holds">[]): number {
  for (let i = headers.length - 1; i > 0; i--) if (!holdsChanges(headers[i] as Manifest)) return i;
  return 0;
}

function sameBlocks(a: BlockMap | undefined, b: BlockMap | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return (
    a.size === b.size &&
    a.digests === b.digests &&
    a.runs === b.runs &&
    a.base === b.base &&
    a.in.length === b.in.length &&
    a.in.every((n, i) => n === b.in[i])
  );
}

/** Whether two records of a path say the same in every key a manifest keeps. */
export function sameRecord(a: Entry, b: Entry): boolean {
  return (
    a.kind === b.kind &&
    a.mode === b.mode &&
    a.mtimeNs === b.mtimeNs &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.size === b.size &&
    a.sha256 === b.sha256 &&
    a.from === b.from &&
    a.target === b.target &&
    a.ino === b.ino &&
    a.ctimeNs === b.ctimeNs &&
    sameBlocks(a.blocks, b.blocks)
  );
}

/** What an incremental's manifest records of its state: the entries new or changed since `parent`. */
export function changesSince(parent: ReadonlyMap<string, Entry>, state: Entry[]): Entry[] {
  return state.filter((e) => {
    const old = parent.get(e.path);
    return old === undefined || !sameRecord(old, e);
  });
}

const byPath = (a: Entry, b: Entry) => comparePaths(a.path, b.path);

/**
 * The state after a manifest holding changes: `state` without its deletions and the paths the
 * changes record again, merged with the changes, sorted by path as a scan sorts. Pure; `state`
 * is not modified (an unchanged state is returned as it is).
 */
export function applyChanges(state: Entry[], m: Pick<Manifest, "entries" | "deletions">): Entry[] {
  if (m.entries.length === 0 && m.deletions.length === 0) return state;
  const gone = new Set(m.deletions);
  for (const e of m.entries) gone.add(e.path);
  const kept = state.filter((e) => !gone.has(e.path));
  let changes = m.entries;
  for (let i = 1; i < changes.length; i++)
    if (byPath(changes[i - 1] as Entry, changes[i] as Entry) > 0) {
      changes = [...changes].sort(byPath);
      break;
    }
  const out: Entry[] = new Array(kept.length + changes.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < kept.length && j < changes.length)
    out[k++] =
      byPath(kept[i] as Entry, changes[j] as Entry) <= 0 ? (kept[i++] as Entry) : (changes[j++] as Entry);
  while (i < kept.length) out[k++] = kept[i++] as Entry;
  while (j < changes.length) out[k++] = changes[j++] as Entry;
  return out;
}

/**
 * The state of the newest of `manifests`, a chain's manifests oldest first from one holding a
 * whole state (firstNeeded): the newest's header with the state's entries and its own deletions.
 */
export function stateOf(manifests: Manifest[]): Manifest {
  const newest = manifests.at(-1);
  const first = manifests[0];
  if (!newest || !first) throw new Error("stateOf: no manifest");
  if (holdsChanges(first))
    throw new BschedError(
      "CHAIN_BROKEN",
      `backup ${first.name} lists only changes, but its parent's state is not read`,
    );
  if (!holdsChanges(newest)) return newest;
  let entries = first.entries;
  for (const m of manifests.slice(1)) entries = holdsChanges(m) ? applyChanges(entries, m) : m.entries;
  return { ...newest, holds: "state", entries };
}
