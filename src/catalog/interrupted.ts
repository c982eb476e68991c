import fs from "node:fs";
import { hostName, isProcessAlive } from "../platform/host.ts";
import type { Catalog, RunRecord } from "./catalog.ts";

/** Who runs a run: recorded by startRun so that a later command can tell it is gone. */
export interface RunOwner {
  pid: number;
  host: string;
  pidStart: string | null;
}

/**
 * When process `pid` started, as the kernel counts it (Linux: field 22 of /proc/PID/stat, clock
 * ticks since boot): with the pid it names one process, so a pid reused after a kill -9 is not
 * taken for the run's own. Null where there is no /proc, or no such process.
 */
export function processStartOf(pid: number): string | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19] ?? null;
}

export function currentOwner(): RunOwner {
  return { pid: process.pid, host: hostName(), pidStart: processStartOf(process.pid) };
}

/**
 * Why a `running` run is not running any more, or undefined while its process may still live.
 * Only runs started on this host can be checked (a pid means nothing on another machine); runs
 * recorded before bsched kept the pid (schema 1) are judged only when `legacy` says their
 * process cannot be alive (daemon start: the state folder is ours; `catalog check`).
 */
export function goneReason(run: RunRecord, opts: { legacy?: boolean } = {}): string | undefined {
  if (run.status !== "running") return undefined;
  if (run.pid === null) {
    return opts.legacy
      ? "its process ended without recording a result (recorded by an older bsched, without its process id)"
      : undefined;
  }
  if (run.host !== hostName()) return undefined;
  const gone = `process ${run.pid} ended without recording a result`;
  if (!isProcessAlive(run.pid)) return gone;
  const start = processStartOf(run.pid);
  if (run.pidStart !== null && start !== null && start !== run.pidStart) {
    return `${gone} (its pid now belongs to another process)`;
  }
  return undefined;
}

/**
 * How a run reads now: a `running` run whose process is gone shows as `interrupted`, with the
 * reason, without writing anything (`status` and `history` only read; the next command that
 * writes the catalog records it with interruptGoneRuns).
 */
export function asSeen(run: RunRecord, now: Date): RunRecord {
  const why = goneReason(run);
  if (why === undefined) return run;
  return { ...run, status: "interrupted", error: `${why} (noticed ${now.toISOString()})` };
}

/**
 * Record every run whose process is gone as `interrupted`: `finishedAt` is when this was
 * noticed (the real end is unknown), `error` says why. Returns the runs so recorded.
 */
export function interruptGoneRuns(catalog: Catalog, now: Date, opts: { legacy?: boolean } = {}): RunRecord[] {
  const done: RunRecord[] = [];
  for (const run of catalog.runs({ status: "running" })) {
    const why = goneReason(run, opts);
    if (why === undefined) continue;
    const outcome = {
      finishedAt: now.toISOString(),
      status: "interrupted" as const,
      error: `${why} (noticed ${now.toISOString()})`,
    };
    catalog.finishRun(run.id, outcome);
    done.push({ ...run, ...outcome });
  }
  return done;
}
