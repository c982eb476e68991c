import { backupsUntilFull, chainLength } from "../backup/cadence.ts";
import type { Catalog } from "../catalog/catalog.ts";
import { asSeen } from "../catalog/interrupted.ts";
import { openCatalog } from "../catalog/reconcile.ts";
import type { SetConfig } from "../config/load.ts";
import type { BschedError } from "../core/errors.ts";
import { type DaemonState, daemonState } from "../daemon/state-lock.ts";
import { assessBackups, diskBytesOf, listBackups } from "../destination/backups.ts";
import { closeQuietly } from "../destination/by-name.ts";
import type { Destination } from "../destination/destination.ts";
import { destinationOf } from "../destination/for-set.ts";
import { nextRun, nextRuns } from "../schedule/schedule.ts";
import { type OpContext, throwIfAborted } from "./context.ts";
import {
  answerWithin,
  asUnreachable,
  COPY_STATUS_TIMEOUT_MS,
  type CopyStatusOptions,
  copyStatuses,
  probeCopies,
} from "./copy-status.ts";
import { checkDiskSpace, type DiskCheck, type DiskFree } from "./disk-space.ts";
import { drillStatus } from "./drill-status.ts";
import { type ServiceState, serviceState } from "./service.ts";

export type SetStatus = Awaited<ReturnType<typeof setStatus>>;

export interface Status {
  daemon: DaemonState;
  /** The systemd service (`bsched service install`): installed, and whether systemd says it is active. */
  service: ServiceState;
  sets: (SetStatus & { disk: Omit<DiskCheck, "set"> | null })[];
}

export interface StatusOptions extends CopyStatusOptions {
  /** How free space is measured (default statfs): tests give a disk of a chosen size. */
  diskFree?: DiskFree | undefined;
  /** Where the service's unit is looked for (default /etc/systemd/system). */
  unitDir?: string | undefined;
}

/**
 * `bsched status`: per set, the next run, the last run and the backups on disk; and whether a
 * daemon holds the state folder. Reads only: the backups come from the folders (the truth), the
 * last run from the catalog, which is not repaired here (`bsched catalog check` and the daemon do).
 * Each copy destination is listed too (names and header lines), each given a timeout: one that
 * is down shows as such and never stops the rest (`opts.offline`: the catalog's view only).
 */
export async function status(ctx: OpContext, opts: StatusOptions = {}): Promise<Status> {
  throwIfAborted(ctx.signal);
  const { config } = ctx;
  const now = ctx.clock.now();
  const daemon = await daemonState(config, now);
  const catalog = ctx.catalog ?? openCatalog(config);
  // Every copy destination is listed meanwhile, each within its timeout (copy-status.ts).
  const probes = probeCopies(config, opts);
  try {
    const sets: SetStatus[] = [];
    for (const set of config.sets.values()) sets.push(await setStatus(ctx, catalog, set, now, probes, opts));
    // Room for each set's next full (issue 14 item 5): one statfs per folder, the estimate from the catalog.
    const disk = await checkDiskSpace(config, catalog, opts.diskFree);
    const service = await serviceState(opts.unitDir);
    return {
      daemon,
      service,
      sets: sets.map((s) => {
        const d = disk.find((c) => c.set === s.set);
        if (!d) return { ...s, disk: null };
        const { set: _, ...rest } = d;
        return { ...s, disk: rest };
      }),
    };
  } finally {
    await probes.close();
    if (ctx.catalog === undefined) catalog.close();
  }
}

async function setStatus(
  ctx: OpContext,
  catalog: Catalog,
  set: SetConfig,
  now: Date,
  probes: ReturnType<typeof probeCopies>,
  opts: CopyStatusOptions,
) {
  const { config } = ctx;
  const dest = destinationOf(set);
  let folder: Awaited<ReturnType<typeof readFolder>>;
  let folderError: BschedError | undefined;
  try {
    const spec = set.folderSpec;
    if (spec === undefined || spec.config.type === "local") folder = await readFolder(dest, set);
    else {
      // The set's own folder is remote: down or silent, it is shown so, like a copy.
      const ms = opts.timeoutMs ?? COPY_STATUS_TIMEOUT_MS;
      try {
        folder = await answerWithin(readFolder(dest, set), ms, spec.name, set.folder, set.id);
      } catch (e) {
        folderError = asUnreachable(e, spec.name, set.folder, set.id);
        folder = { backups: [], unrestorable: 0, diskBytes: 0 };
      }
    }
  } finally {
    await closeQuietly(dest);
  }
  const { backups, unrestorable } = folder;
  // A run whose process is gone shows as interrupted (recorded by the next writing command).
  const newest = catalog.runs({ set: set.id, limit: 1 })[0];
  const last = newest && asSeen(newest, now);
  const scheduled = set.automatic && set.frequency !== "now";
  const next = scheduled ? nextRun(set, now, config.timezone) : undefined;
  // The full cadence (incremental sets): how long the chain is, when the next full comes.
  let chain = null;
  if (set.mode === "incremental" && folderError === undefined) {
    const length = await chainLength(backups);
    const nextFullIn = backupsUntilFull(set, length);
    // Runs are counted one by one: bounded, so that a huge fullEvery cannot stall `status`.
    const at =
      scheduled && nextFullIn <= 10_000
        ? nextRuns(set, now, config.timezone, nextFullIn).at(nextFullIn - 1)
        : undefined;
    chain = { length, fullEvery: set.fullEvery, nextFullIn, nextFullAt: at?.toISOString() ?? null };
  }
  return {
    set: set.id,
    automatic: set.automatic,
    schedule: {
      frequency: set.frequency,
      day: set.day ?? null,
      time: set.time,
      timezone: config.timezone,
    },
    nextRun: next?.toISOString() ?? null,
    mode: set.mode,
    chain,
    lastRun: last
      ? {
          status: last.status,
          trigger: last.trigger,
          planned: last.planned,
          startedAt: last.startedAt,
          finishedAt: last.finishedAt,
          backup: last.backup,
          error: last.error,
          errorCode: last.errorCode,
          errorHint: last.errorHint,
        }
      : null,
    backups: {
      count: backups.length,
      storedBytes: backups.reduce((n, b) => n + b.header.totals.storedBytes, 0),
      diskBytes: folder.diskBytes,
      newest: backups.at(-1)?.name ?? null,
      /** Backups that cannot be restored (`bsched list` says why; `prune --broken` removes them). */
      broken: unrestorable,
      /** A remote folder that could not be listed (the counts above are then 0): why. */
      ...(folderError === undefined
        ? {}
        : {
            error: folderError.message,
            errorCode: folderError.code,
            ...(folderError.hint === undefined ? {} : { errorHint: folderError.hint }),
          }),
    },
    /** Per copy destination (`copies:`): the newest backup there, how far behind, the last copy's result. */
    copies: await copyStatuses(set, folderError === undefined ? backups : undefined, catalog, probes),
    /** Restore drills (issue 14): per place, "last proven restorable" with its restore time, and the last drill. */
    drills: drillStatus(config, catalog, set, now),
  };
}

/** The set's own backups: the complete ones, how many cannot be restored, their bytes on disk. */
async function readFolder(dest: Destination, set: SetConfig) {
  const { backups } = await listBackups(dest, set.letter, set.id);
  const unrestorable = (await assessBackups(dest, set.letter, set.id)).filter(
    (b) => b.state === "broken",
  ).length;
  const sizes = await Promise.all(backups.map((b) => diskBytesOf(dest, b.name, b.header)));
  return { backups, unrestorable, diskBytes: sizes.reduce((n, d) => n + d, 0) };
}
