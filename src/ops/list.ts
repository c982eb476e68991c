import type { SetConfig } from "../config/load.ts";
import type { BackupSummary } from "../core/types.ts";
import { assessBackups, diskBytesOf } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";
import { destinationOf } from "../destination/for-set.ts";
import type { Restorability } from "../snapshot/chain.ts";
import { summarize } from "../snapshot/manifest.ts";
import { type OpContext, throwIfAborted } from "./context.ts";

/** A backup as `list` shows it; a folder whose manifest cannot be read has null fields and says why. */
export type ListedBackup = (BackupSummary | NullSummary) & {
  state: Restorability["state"];
  reason: string | null;
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
  opts: { destination?: Destination | undefined } = {},
): Promise<ListResult> {
  throwIfAborted(ctx.signal);
  const sets = only ? [only] : [...ctx.config.sets.values()];
  const all: ListedBackup[] = [];
  const brokenSets = new Set<string>();
  let broken = 0;
  for (const set of sets) {
    // `destination` overrides the set's own (meant with `only`: one set's backups elsewhere).
    const dest = opts.destination ?? destinationOf(set);
    for (const b of await assessBackups(dest, set.letter, set.id)) {
      const reason = b.state === "broken" ? b.reason : null;
      if (b.state === "broken") {
        broken++;
        brokenSets.add(set.id);
      }
      if (b.header)
        all.push({
          ...summarize(b.header, b.path, await diskBytesOf(dest, b.name, b.header)),
          state: b.state,
          reason,
        });
      else {
        ctx.progress?.({
          kind: "log",
          line: `note: ${b.path} is not a complete backup: it cannot be restored (${reason})`,
        });
        all.push({ ...nullSummary(b.name, b.path, set.id), state: b.state, reason });
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
