import path from "node:path";
import type { DrillCheck, NewDrill, RunTrigger } from "../catalog/catalog.ts";
import type { DrillConfig, SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import type { ProgressCallback } from "../core/types.ts";
import { assessBackups, listBackups } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";
import type { Clock } from "../platform/clock.ts";
import { fromOsError } from "../platform/os-errors.ts";
import { locateForSet } from "../restore/locate.ts";
import { restoreState } from "../restore/restore.ts";
import { describeOutcome, runCheckCommand } from "./check-command.ts";
import { checkScratchSpace, makeDrillFolder, removeDrillFolder } from "./scratch.ts";
import { checkDatabase, findDatabases } from "./sqlite-check.ts";

/** The name a drill record gives the set's own backup folder (drill.from's `local`). */
export const LOCAL_PLACE = "local";

export interface DrillPlaceOptions {
  set: SetConfig;
  drill: DrillConfig;
  /** Where the backups are read: the set's own destination, or another of `destinations:`. */
  dest: Destination;
  /** The record's name for it: `local`, or the destination's config name. */
  place: string;
  /** Restore this backup only (`--backup NAME`); default the newest, then a random older kept one. */
  backup?: string | undefined;
  /** Also a random older kept backup after the newest (default true; never with `backup`). */
  older?: boolean | undefined;
  random?: (() => number) | undefined;
  trigger: RunTrigger;
  clock: Clock;
  signal?: AbortSignal | undefined;
  onProgress?: ProgressCallback | undefined;
  log: (line: string) => void;
  /** From this size on a database gets quick_check first (default 1 GiB). */
  quickFrom?: number | undefined;
}

type Pick = { name: string | undefined; pick: NewDrill["pick"] };

/**
 * The drills of one place (docs/design.md "Restore drills"): the newest backup there, then a
 * random older one that is still kept and restorable (or only the one asked for), each restored
 * into its own folder in the scratch folder and checked, the folder removed after. Each is one
 * record; a failure is a record that says why (never thrown), except a cancel (CANCELLED).
 */
export async function drillPlace(opts: DrillPlaceOptions): Promise<NewDrill[]> {
  const { set, dest } = opts;
  const picks: Pick[] = [];
  if (opts.backup !== undefined) picks.push({ name: opts.backup, pick: "chosen" });
  else {
    try {
      const { backups } = await listBackups(dest, set.letter, set.id);
      const newest = backups.at(-1)?.name;
      // The newest as it is (a broken one fails the drill: that is what a restore today would meet).
      picks.push({ name: newest, pick: "newest" });
      if (newest !== undefined && opts.older !== false) {
        const older = (await assessBackups(dest, set.letter, set.id)).filter(
          (b) => b.state === "ok" && b.name !== newest,
        );
        const i = Math.floor((opts.random ?? Math.random)() * older.length);
        const o = older[Math.min(i, older.length - 1)];
        if (o !== undefined) picks.push({ name: o.name, pick: "older" });
      }
    } catch (e) {
      return [failedRecord(opts, { name: undefined, pick: "newest" }, opts.clock.now(), e, [], null)];
    }
  }
  const records: NewDrill[] = [];
  for (const p of picks) records.push(await drillOne(opts, p));
  return records;
}

/** The record of a place that could not be opened (a disk not mounted, a server down). */
export function placeUnavailable(opts: Omit<DrillPlaceOptions, "dest">, error: unknown): NewDrill {
  return failedRecord(
    opts,
    { name: opts.backup, pick: opts.backup ? "chosen" : "newest" },
    opts.clock.now(),
    error,
    [],
    null,
  );
}

async function drillOne(opts: DrillPlaceOptions, p: Pick): Promise<NewDrill> {
  const { set, drill, dest, clock, signal } = opts;
  const started = clock.now();
  const checks: DrillCheck[] = [];
  let restoreMs: number | null = null;
  let files = 0;
  let bytes = 0;
  let dir: string | undefined;
  try {
    // Located first (a backup missing there, a broken chain, fail here); sized from its manifest.
    const located = await locateForSet(set, p.name, dest);
    const name = located.manifest.name;
    const need = located.manifest.totals.bytes;
    await checkScratchSpace({
      scratch: drill.scratch,
      need,
      maxSize: drill.maxSize,
      backup: name,
      setId: set.id,
    });
    dir = await makeDrillFolder(drill.scratch, set.id);
    const target = path.join(dir, "restore");
    opts.log(`drill of set ${set.id}: restoring ${name} (${p.pick}) from ${opts.place} into ${target}`);
    const t0 = clock.now().getTime();
    try {
      const r = await restoreState({
        chain: located.chain,
        manifest: located.manifest,
        target,
        clock,
        signal,
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      });
      restoreMs = clock.now().getTime() - t0;
      files = r.files;
      bytes = r.bytes;
      checks.push({
        name: "restore",
        ok: true,
        detail: `chain of ${located.chain.length}, ${r.files} files, ${r.bytes} bytes: every sha256 matched`,
      });
    } catch (e) {
      const err = fromOsError(e, { path: target, doing: `restore into ${target}` });
      checks.push({ name: "restore", ok: false, detail: (err as Error)?.message ?? String(err) });
      throw err;
    }
    for (const db of await findDatabases(target)) {
      throwIfCancelled(signal, set.id);
      const r = await checkDatabase(path.join(target, db.rel), db.size, {
        quickFrom: opts.quickFrom,
        signal,
      });
      throwIfCancelled(signal, set.id);
      checks.push({ name: `sqlite ${db.rel}`, ...r });
    }
    if (drill.check !== undefined) {
      const o = await runCheckCommand(
        drill.check,
        target,
        { BSCHED_SET: set.id, BSCHED_BACKUP: name, BSCHED_DRILL_FROM: opts.place },
        { timeoutS: drill.timeout, log: opts.log, signal },
      );
      throwIfCancelled(signal, set.id);
      checks.push({
        name: "command",
        ok: o.code === 0 && !o.timedOut,
        detail: `${JSON.stringify(drill.check)} ${describeOutcome(o, drill.timeout)}`,
      });
    }
    const bad = checks.find((c) => !c.ok);
    if (bad) throw checkFailed(set.id, opts.place, name, bad);
    return {
      set: set.id,
      destination: opts.place,
      backup: name,
      pick: p.pick,
      trigger: opts.trigger,
      startedAt: started.toISOString(),
      finishedAt: clock.now().toISOString(),
      restoreMs,
      files,
      bytes,
      ok: true,
      checks,
      error: null,
      errorCode: null,
      errorHint: null,
    };
  } catch (e) {
    if (e instanceof BschedError && e.code === "CANCELLED") throw e;
    return failedRecord(opts, p, started, e, checks, restoreMs, { files, bytes });
  } finally {
    if (dir !== undefined) {
      const left = await removeDrillFolder(dir);
      if (left) opts.log(left);
    }
  }
}

function throwIfCancelled(signal: AbortSignal | undefined, setId: string): void {
  if (signal?.aborted)
    throw new BschedError("CANCELLED", `drill of set ${setId}: cancelled`, {
      hint: "nothing was kept: run the drill again",
    });
}

/** The error a failed check makes: which check, what it found, and what to do about it. */
function checkFailed(setId: string, place: string, backup: string, bad: DrillCheck): BschedError {
  const hint = bad.name.startsWith("sqlite ")
    ? `the backup holds a damaged database (${bad.name.slice(7)}): it was most likely damaged in the source before it was backed up. Check the application's copy (\`sqlite3 FILE "PRAGMA integrity_check"\`), repair it, and until then restore from an older backup that passes (\`bsched drill ${setId} --backup NAME\` tries one)`
    : `the check command (sets.${setId}.drill.check) found a problem in the restored folder: its output is in the log; fix what it reports, or the command`;
  return new BschedError(
    "DRILL_FAILED",
    `drill of set ${setId} from ${place}: ${backup}: ${bad.name === "command" ? "check command" : bad.name} failed: ${bad.detail}`,
    { hint },
  );
}

function failedRecord(
  opts: Omit<DrillPlaceOptions, "dest">,
  p: Pick,
  started: Date,
  error: unknown,
  checks: DrillCheck[],
  restoreMs: number | null,
  sizes = { files: 0, bytes: 0 },
): NewDrill {
  const e = fromOsError(error);
  const be = e instanceof BschedError ? e : undefined;
  return {
    set: opts.set.id,
    destination: opts.place,
    backup: p.name ?? null,
    pick: p.pick,
    trigger: opts.trigger,
    startedAt: started.toISOString(),
    finishedAt: opts.clock.now().toISOString(),
    restoreMs,
    ...sizes,
    ok: false,
    checks,
    error: (e as Error)?.message ?? String(e),
    errorCode: be?.code ?? "INTERNAL",
    errorHint:
      be?.hint ??
      (be
        ? null
        : "an unexpected failure: the daemon's log (or the command run with BSCHED_DEBUG=1) says where; report it"),
  };
}
