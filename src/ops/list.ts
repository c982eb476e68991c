import type { SetConfig } from "../config/load.ts";
import type { BackupSummary } from "../core/types.ts";
import { assessBackups, diskBytesOf, listBackups } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";
import { destinationOf } from "../destination/for-set.ts";
import type { Restorability } from "../snapshot/chain.ts";
import { summarize } from "../snapshot/manifest.ts";
import { type OpContext, throwIfAborted } from "./context.ts";

/** A backup as `list` shows it; a folder whose manifest cannot be read has null fields and says why. */
export type ListedBackup = (BackupSummary | NullSummary) & {
  state: Restorability["state"];
  reason: string | null;
  /**
   * Listing another destination than the set's own folder (`list --dest NAME`): whether the set's
   * own folder holds this backup complete too (null: it could not be listed). Absent otherwise.
   */
  inFolder?: boolean | null;
};

export interface ListResult {
  /** Oldest first; a folder without a readable header sorts by its name (which holds its time). */
  backups: ListedBackup[];
  /** How many cannot be restored, and in which sets. */
  broken: number;
  brokenSets: string[];
}

/**
 * `bsched list`: the backups of the given sets (default every set of the config), each judged
 * restorable or not, from the folders (the truth), not the catalog. A folder that is not a
 * complete backup is announced as a `log` event.
 */
export async function list(
  ctx: Pick<OpContext, "config" | "progress" | "signal">,
  only?: SetConfig | undefined,
  opts: { destination?: Destination | undefined; compareWithFolder?: boolean | undefined } = {},
): Promise<ListResult> {
  throwIfAborted(ctx.signal);
  const sets = only ? [only] : [...ctx.config.sets.values()];
  const all: ListedBackup[] = [];
  const brokenSets = new Set<string>();
  let broken = 0;
  for (const set of sets) {
    // `destination` overrides the set's own (meant with `only`: one set's backups elsewhere).
    const dest = opts.destination ?? destinationOf(set);
    const inFolder =
      opts.destination !== undefined && opts.compareWithFolder === true ? await folderHolds(set) : undefined;
    for (const b of await assessBackups(dest, set.letter, set.id)) {
      const reason = b.state === "broken" ? b.reason : null;
      const mark =
        inFolder === undefined ? {} : { inFolder: inFolder === null ? null : inFolder.has(b.name) };
      if (b.state === "broken") {
        broken++;
        brokenSets.add(set.id);
      }
      if (b.header)
        all.push({
          ...summarize(b.header, b.path, await diskBytesOf(dest, b.name, b.header)),
          state: b.state,
          reason,
          ...mark,
        });
      else {
        ctx.progress?.({
          kind: "log",
          line: `note: ${b.path} is not a complete backup: it cannot be restored (${reason})`,
        });
        all.push({ ...nullSummary(b.name, b.path, set.id), state: b.state, reason, ...mark });
      }
    }
  }
  all.sort((a, b) => {
    const ka = a.startedAt ?? "";
    const kb = b.startedAt ?? "";
    if (ka && kb && ka !== kb) return ka < kb ? -1 : 1;
    return a.name < b.name ? -1 : 1;
  });
  return { backups: all, broken, brokenSets: [...brokenSets] };
}

/** The names of the complete backups in the set's own folder; null when it cannot be listed. */
async function folderHolds(set: SetConfig): Promise<Set<string> | null> {
  const own = destinationOf(set);
  try {
    return new Set((await listBackups(own, set.letter, set.id)).backups.map((b) => b.name));
  } catch {
    return null;
  } finally {
    await own.close?.().catch(() => undefined);
  }
}

type NullSummary = {
  [K in keyof BackupSummary]: K extends "name" | "path" | "set" | "warnings" ? BackupSummary[K] : null;
};

function nullSummary(name: string, path: string, set: string): NullSummary {
  return {
    name,
    path,
    set,
    type: null,
    mode: null,
    parent: null,
    files: null,
    bytes: null,
    warnings: [],
    startedAt: null,
    finishedAt: null,
    storedFiles: null,
    storedBytes: null,
    diskBytes: null,
  };
}
