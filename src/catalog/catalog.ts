import type { BackupMode, BackupSummary, BackupType, RunStatus } from "../core/types.ts";

/** Declared with the domain vocabulary (src/core/types.ts); re-exported for the catalog's users. */
export type { RunStatus };

/** Why a run started. `rebuild`: reconstructed from a backup folder by `catalog rebuild` / repair. */
export type RunTrigger = "schedule" | "catch-up" | "manual" | "rebuild";

/**
 * Which runs `Catalog.runs` returns, newest first: of a set, of a status (or any of `statuses`),
 * started (else finished, else planned) in [since, until) (ISO instants), at most `limit`.
 */
export interface RunFilter {
  set?: string;
  limit?: number;
  status?: RunStatus;
  statuses?: RunStatus[];
  since?: string;
  until?: string;
}

export interface RunRecord {
  id: number;
  set: string;
  /** The schedule slot this run is for (ISO instant); null for runs not from a schedule. */
  planned: string | null;
  trigger: RunTrigger;
  startedAt: string | null;
  finishedAt: string | null;
  status: RunStatus;
  warnings: number;
  files: number;
  bytes: number;
  backup: string | null;
  /** A failed or interrupted run's message. */
  error: string | null;
  /**
   * A failed run's stable code (a BschedError's `code`, `INTERNAL` for an unexpected failure) and
   * the fix it names; null for runs that did not fail that way and runs recorded before schema
   * version 3.
   */
  errorCode: string | null;
  errorHint: string | null;
  /** Slots this run stands for (a catch-up of 3 missed slots: 3). */
  slots: number;
  /**
   * The process that started the run: a `running` run whose process is gone was interrupted.
   * `pidStart` tells a reused pid from the original process (Linux: /proc start time); all three
   * are null in runs recorded before schema version 2.
   */
  pid: number | null;
  host: string | null;
  pidStart: string | null;
}

/** The catalog records the calling process as the run's owner (pid, host, pidStart). */
export type NewRun = Pick<RunRecord, "set" | "planned" | "trigger" | "startedAt"> &
  Partial<Pick<RunRecord, "status" | "slots" | "finishedAt" | "error" | "errorCode" | "errorHint">>;

export type RunOutcome = Pick<RunRecord, "finishedAt" | "status"> &
  Partial<Pick<RunRecord, "warnings" | "files" | "bytes" | "backup" | "error" | "errorCode" | "errorHint">>;

/** The destination name of a set's own backup folder (LocalDestination's default name). */
export const OWN_FOLDER = "folder";

/**
 * A backup as the catalog knows it: by destination and name, never by a local path (schema
 * version 3), so the same record serves a backup on SFTP or S3 and never goes stale when a
 * folder moves. Where a path is shown, it is computed when read: the destination's
 * `locationOf(name)`, for `folder` the set's folder joined with the name.
 */
export interface BackupRecord {
  set: string;
  name: string;
  /** The destination holding it, by its config name: `folder` for the set's own backup folder. */
  destination: string;
  type: BackupType;
  mode: BackupMode;
  parent: string | null;
  startedAt: string;
  finishedAt: string;
  files: number;
  bytes: number;
  storedBytes: number;
  /** Bytes the backup takes on disk (its `.sh` or stored files, and its manifest); null if not known yet. */
  diskBytes: number | null;
  warnings: number;
}

/**
 * How the last copy of a set to one destination ended (issue 11): what `status` shows per copy
 * ("failing since…", with the code and the fix) until a later copy there succeeds.
 */
export interface CopyRecord {
  set: string;
  /** The destination copied to, by its config name. */
  destination: string;
  /** When the copy (with its retries) ended. */
  at: string;
  ok: boolean;
  /** Backups sent to it by this copy (0 when it was already level). */
  copied: number;
  /** The newest backup it holds after this copy (null: none). */
  newest: string | null;
  /** A failed copy's message, code and fix (never a secret: messages never hold one). */
  error: string | null;
  errorCode: string | null;
  errorHint: string | null;
}

/** One check of a restore drill and how it ended (issue 14). */
export interface DrillCheck {
  /**
   * `restore` (the chain restored, every file checked against its sha256), `sqlite <path>` (PRAGMA
   * quick_check / integrity_check of one database of the restored tree), `command` (drill.check).
   */
  name: string;
  ok: boolean;
  /** What it found ("ok", the first problems SQLite listed, the command's exit), for a person. */
  detail: string;
}

/**
 * The evidence of one restore drill (issue 14): which backup was restored from where, when, how
 * long the restore took (the set's real recovery time from there), and every check's result.
 */
export interface DrillRecord {
  id: number;
  set: string;
  /** Where it was restored from: `local` (the set's own backup folder) or a destination's config name. */
  destination: string;
  /** The backup restored; null when none could be (no backup there, the listing failed). */
  backup: string | null;
  /** Why that one: the newest there, a random older kept one, or the one asked for (`--backup`). */
  pick: "newest" | "older" | "chosen";
  trigger: RunTrigger;
  startedAt: string;
  finishedAt: string;
  /** Milliseconds the restore took (chain located, read, written, every file checked); null if it never ran. */
  restoreMs: number | null;
  files: number;
  bytes: number;
  ok: boolean;
  checks: DrillCheck[];
  error: string | null;
  errorCode: string | null;
  errorHint: string | null;
}

export type NewDrill = Omit<DrillRecord, "id">;

/** Which drills `Catalog.drills` returns, newest first. */
export interface DrillFilter {
  set?: string;
  destination?: string;
  ok?: boolean;
  limit?: number;
}

/**
 * What the daemon remembers between runs. The backup folders stay the truth for backups
 * (src/catalog/reconcile.ts repairs this from them); runs and schedule marks live only here.
 */
export interface Catalog {
  startRun(run: NewRun): number;
  finishRun(id: number, outcome: RunOutcome): void;
  getRun(id: number): RunRecord | undefined;
  /** Newest first; `limit` newest only; `status`: only runs in that state. */
  runs(filter?: RunFilter): RunRecord[];
  /**
   * The newest schedule slot handled for the set (run, caught up, skipped), or the mark set when
   * the set was first scheduled: slots after it and before now were missed.
   */
  lastPlanned(set: string): string | undefined;
  /** Record that the schedule of `set` has been handled up to `planned` (never moves back). */
  markPlanned(set: string, planned: string): void;
  putBackup(b: BackupRecord): void;
  /** Forget a backup of `destination` (default: the set's own folder). */
  removeBackup(set: string, name: string, destination?: string): void;
  /** Oldest first, on every destination (a copy of a backup on two destinations is two records). */
  backups(set?: string): BackupRecord[];
  /** Record how a copy to a destination ended (one row per set and destination: the last one). */
  putCopy(c: CopyRecord): void;
  /** The last copy record of each destination of `set` (of every set when undefined), by destination name. */
  copies(set?: string): CopyRecord[];
  /** Record a restore drill's evidence (issue 14); returns its id. */
  addDrill(d: NewDrill): number;
  /** Drills, newest first (by when they were recorded). */
  drills(filter?: DrillFilter): DrillRecord[];
  close(): void;
}

export function maxIso(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Date.parse(a) >= Date.parse(b) ? a : b;
}

/** The catalog's record of a backup that a run just made on `destination` (default: the set's own folder). */
export function backupRecord(set: string, s: BackupSummary, destination: string = OWN_FOLDER): BackupRecord {
  return {
    set,
    name: s.name,
    destination,
    type: s.type,
    mode: s.mode,
    parent: s.parent,
    startedAt: s.startedAt,
    finishedAt: s.finishedAt,
    files: s.files,
    bytes: s.bytes,
    storedBytes: s.storedBytes,
    diskBytes: s.diskBytes,
    warnings: s.warnings.length,
  };
}
