import path from "node:path";
import type { SetConfig } from "../config/load.ts";
import type { Manifest } from "../core/types.ts";
import type { Destination } from "../destination/destination.ts";
import { type Clock, systemClock } from "../platform/clock.ts";
import { fromOsError } from "../platform/os-errors.ts";
import { locateForSet, locateFromPath } from "../restore/locate.ts";
import { type RestoreFailure, type RestoreResult, restoreState } from "../restore/restore.ts";
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
  opts: { to: string; overwrite?: boolean | undefined; destination?: Destination | undefined },
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
  const r = await restoreState({
    chain: located.chain,
    manifest: located.manifest,
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
