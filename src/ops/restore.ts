import path from "node:path";
import type { SetConfig } from "../config/load.ts";
import type { Manifest } from "../core/types.ts";
import type { Destination } from "../destination/destination.ts";
import { type Clock, systemClock } from "../platform/clock.ts";
import { fromOsError } from "../platform/os-errors.ts";
import { locateForSet, locateFromPath } from "../restore/locate.ts";
import {
  presentIn,
  type RestoreFailure,
  type RestoreResult,
  restoreState,
  targetEntries,
  targetNotEmpty,
} from "../restore/restore.ts";
import { selectPaths } from "../snapshot/select.ts";
import { type OpContext, progressTo, throwIfAborted } from "./context.ts";

/** Which backup to restore: one of a set (default its newest), or — with no config — one at a path. */
export type RestoreSource = { set: SetConfig; backup?: string | undefined } | { from: string };

export interface RestoreOpResult extends RestoreResult {
  /** The backup restored. */
  backup: Manifest["name"];
  /** Its chain, oldest first (the full, then each incremental). */
  chain: string[];
  /** The folder restored into, absolute. */
  target: string;
}

/**
 * `bsched restore`: find the backup and its chain, restore it into `to`. A failure says what it
 * left in the target (a `log` event) and is thrown as a BschedError naming the target.
 */
export async function restore(
  ctx: Pick<OpContext, "progress" | "signal"> & { clock?: Clock | undefined },
  source: RestoreSource,
  opts: {
    to: string;
    overwrite?: boolean | undefined;
    destination?: Destination | undefined;
    /** Only these paths of the backup (each with what is under it); default: all of it. */
    paths?: string[] | undefined;
  },
): Promise<RestoreOpResult> {
  throwIfAborted(ctx.signal, `restore into ${opts.to}`);
  // `destination` overrides the set's own (a --from path is read where it is).
  const located =
    "from" in source
      ? await locateFromPath(source.from)
      : await locateForSet(source.set, source.backup, opts.destination);
  const target = path.resolve(opts.to);
  const emit = ctx.progress;
  const clock = ctx.clock ?? systemClock;
  const onProgress = progressTo(emit, clock);
  const some = opts.paths !== undefined && opts.paths.length > 0;
  const manifest = some ? selectPaths(located.manifest, opts.paths as string[]) : located.manifest;
  const r = await restoreState({
    chain: located.chain,
    manifest,
    // Some paths only: the folder is not at the backup's state, so it is not marked as such.
    marker: !some,
    target,
    overwrite: opts.overwrite,
    clock,
    signal: ctx.signal,
    ...(onProgress ? { onProgress } : {}),
  }).catch((e: RestoreFailure) => {
    if (e?.targetState) emit?.({ kind: "log", line: e.targetState });
    throw fromOsError(e, { path: target, doing: `restore into ${target}` });
  });
  return { ...r, backup: located.manifest.name, chain: located.chain.map((l) => l.name), target };
}

export interface RestorePlan {
  backup: string;
  target: string;
  /** Entries in the target now (null: it does not exist; it will be created). */
  existing: number | null;
  /** With overwrite into a folder that is not empty: the backup's paths found there, which it replaces. */
  replaces: number;
  /** The first few of them. */
  sample: string[];
  /** In words, for the user before the restore starts. */
  note: string;
}

/**
 * Before a restore the user has to confirm (the web window): which backup, and what it will do to
 * the target — created, filled while empty, or (overwrite) which of its paths are replaced, the
 * others left alone. Refused as the restore itself would refuse (TARGET_NOT_EMPTY without
 * overwrite; no such backup; paths the backup does not hold). Reads only.
 */
export async function planRestore(
  source: { set: SetConfig; backup?: string | undefined },
  opts: {
    to: string;
    overwrite?: boolean | undefined;
    destination?: Destination | undefined;
    paths?: string[] | undefined;
  },
): Promise<RestorePlan> {
  const located = await locateForSet(source.set, source.backup, opts.destination);
  const some = opts.paths !== undefined && opts.paths.length > 0;
  const manifest = some ? selectPaths(located.manifest, opts.paths as string[]) : located.manifest;
  const target = path.resolve(opts.to);
  const existing = await targetEntries(target).catch((e) => {
    throw fromOsError(e, { path: target, doing: `restore into ${target}` });
  });
  const base = { backup: manifest.name, target, existing };
  if (existing === null)
    return { ...base, replaces: 0, sample: [], note: `${target} does not exist: it will be created` };
  if (existing === 0)
    return { ...base, replaces: 0, sample: [], note: `${target} is empty: the backup is restored into it` };
  if (!opts.overwrite) throw targetNotEmpty(target, existing);
  const found = await presentIn(
    target,
    manifest.entries.filter((e) => e.kind !== "dir").map((e) => e.path),
  );
  return {
    ...base,
    replaces: found.length,
    sample: found.slice(0, 10),
    note:
      `${target} holds ${existing} entries: the ${found.length} files and links of the backup found there are replaced, ` +
      "the backup's other paths are added, and what the backup does not hold is left alone; " +
      "a restore that fails part-way leaves the folder partly overwritten (and says so)",
  };
}
