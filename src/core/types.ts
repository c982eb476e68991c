/** Domain vocabulary shared by every layer (see docs/design.md). */

/*
 * The closed sets of values are declared once, as arrays: the config and manifest schemas
 * validate against the arrays, and the types are derived from them, so the two cannot drift.
 */
export const BACKUP_TYPES = ["separate", "compressed"] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];
export const BACKUP_MODES = ["full", "incremental"] as const;
export type BackupMode = (typeof BACKUP_MODES)[number];
/**
 * What a set's `notify.on` may name; the webhook's and the email's `event`. `drill_failed`: a
 * restore drill failed (issue 14); `disk_low`: the backup folder's filesystem is fuller than
 * `server.notify.diskWarnPercent` after a backup.
 */
export const NOTIFY_EVENTS = [
  "failure",
  "success",
  "missed",
  "copy_failed",
  "drill_failed",
  "disk_low",
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
export const FREQUENCIES = ["hourly", "daily", "weekly", "monthly", "every", "now"] as const;
export type Frequency = (typeof FREQUENCIES)[number];

/**
 * How a run ended; `running` until it does. `missed`: slots passed while down, not run (catchUp: skip).
 * `aborted`: stopped by the daemon itself (stop timeout). `interrupted`: its process ended without
 * recording a result (killed, crashed, machine off), noticed later (src/catalog/interrupted.ts).
 * The one vocabulary of the catalog, `status`, `history` and the webhook's `status`.
 */
export const RUN_STATUSES = [
  "running",
  "ok",
  "warnings",
  "failed",
  "missed",
  "aborted",
  "interrupted",
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export type EntryKind = "file" | "dir" | "symlink";

/** One path of the source tree as it was when the backup ran. */
export interface Entry {
  /** Relative path with "/" separators, never empty, never "." or "..", no leading "/". */
  path: string;
  kind: EntryKind;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  /** Modification time in nanoseconds since the epoch, as a decimal string (exact). */
  mtimeNs: string;
  uid: number;
  gid: number;
  /** file: size in bytes. */
  size?: number;
  /** file: lowercase hex sha256 of the content. */
  sha256?: string;
  /** file: name of the backup of the chain whose folder stores this content. */
  from?: string;
  /** symlink: the link text, never followed. */
  target?: string;
  /** Change detection keys (docs/design.md): a file is unchanged only if all match. */
  ino?: string;
  ctimeNs?: string;
  /** file (format 2): its block map, for a file of at least the block threshold (src/snapshot/blocks.ts). */
  blocks?: BlockMap;
}

/**
 * A large file's blocks (docs/design.md "Block incrementals"). The file is stored whole in its
 * entry's `from` when `base` is that backup; otherwise `from` stores only some blocks, under
 * `PATH.bsched-blocks/`, and restore assembles the file from the backups the runs name.
 */
export interface BlockMap {
  /** Block size in bytes; the last block may be shorter. */
  size: number;
  /** Per block, the first 12 bytes of its sha256 in base64 (16 characters each), packed. */
  digests: string;
  /** The backups of the chain that hold blocks of this version, indexed by `runs`. */
  in: string[];
  /** Run-length holders: `I*N` for N consecutive blocks held by in[I], comma-separated. */
  runs: string;
  /** The backup of `in` that stores the file whole (its other names store blocks). */
  base?: string;
}

/**
 * The codes of a backup's warnings (README "Errors and what to do"): each leaves the backup
 * complete and makes the exit code 3, except SAME_FILESYSTEM, advice printed once per run that
 * changes nothing.
 */
export const WARNING_CODES = [
  "UNREADABLE",
  "VANISHED",
  "CHANGED_WHILE_READ",
  "KEPT_PREVIOUS",
  "SKIPPED_SPECIAL",
  "UNSUPPORTED_NAME",
  "CHAIN_BROKEN",
  "SQLITE_COPIED_RAW",
  "SOURCE_NOT_LOCKED",
  "HOOK_FAILED",
  "SAME_FILESYSTEM",
  "COPY_FAILED",
] as const;
export type WarningCode = (typeof WARNING_CODES)[number];

/** A warning this version makes. */
export interface Warning {
  path: string;
  code: WarningCode;
  message: string;
}

/**
 * A warning as a manifest holds it: read back from disk, its code may be one this version does
 * not make (a newer bsched's), and is shown as it is.
 */
export type StoredWarning = Omit<Warning, "code"> & { code: string };

/** Metadata of the source root folder itself (it has no entry: paths are relative to it). */
export interface RootMeta {
  mode: number;
  mtimeNs: string;
  uid: number;
  gid: number;
}

export interface ParentRef {
  name: string;
  /** sha256 of the parent's manifest.json bytes. */
  digest: string;
}

export interface Totals {
  files: number;
  dirs: number;
  symlinks: number;
  /** Bytes of all files of the state. */
  bytes: number;
  /** Files and bytes whose content this backup itself stores. */
  storedFiles: number;
  storedBytes: number;
  deletions: number;
}

export interface Manifest {
  format: "bsched-manifest";
  /**
   * 3 since an incremental's manifest lists only its changes (`holds`); 2 added block maps
   * (entries' `blocks`); versions 1 and 2 (every manifest a whole state) are still read.
   */
  formatVersion: 1 | 2 | 3;
  tool: { name: "bsched"; version: string };
  host: string;
  set: string;
  letter: string;
  name: string;
  type: BackupType;
  mode: BackupMode;
  timezone: string;
  startedAt: string;
  finishedAt: string;
  parent: ParentRef | null;
  /**
   * The source root folder's own metadata, given to the restore target. Optional: manifests
   * written before it existed restore as before (the target folder keeps its own).
   */
  root?: RootMeta;
  /**
   * What `entries` hold (format 3; absent before: a whole state). "state": the whole state of
   * the source. "changes" (a format-3 incremental): only the entries whose record differs from
   * the parent's state; the whole state is computed from the chain (src/snapshot/state.ts).
   */
  holds?: "state" | "changes";
  /** The whole state of the source at the time of the backup, or its changes (`holds`), sorted by path. */
  entries: Entry[];
  /** Paths present in the parent's state and gone from this one (or now of another kind). */
  deletions: string[];
  totals: Totals;
  warnings: StoredWarning[];
}

/** A complete backup found on disk. */
export interface BackupRef {
  name: string;
  /** Absolute folder of the backup. */
  path: string;
  manifest: Manifest;
  /** sha256 of manifest.json as read. */
  digest: string;
}

/** What `backup --json` and `list --json` print for one backup (docs/design.md "The contract"). */
export interface BackupSummary {
  name: string;
  path: string;
  set: string;
  type: BackupType;
  mode: BackupMode;
  parent: string | null;
  files: number;
  bytes: number;
  warnings: StoredWarning[];
  startedAt: string;
  finishedAt: string;
  storedFiles: number;
  /** Logical bytes of the files whose content this backup itself stores (as in the manifest's totals). */
  storedBytes: number;
  /** Bytes the backup takes on disk: the compressed type's `.sh`, or the stored files, plus the manifest. */
  diskBytes: number;
}

/**
 * Where a run is (docs/design.md "Runs and cancellation"). A backup: scan → copy → publish →
 * done; a restore: restore (its files) → publish (the staging folder moved into place) → done;
 * a verify: verify → done. `files`/`bytes` count what is done of `totalFiles`/`totalBytes`.
 */
export interface Progress {
  phase: "scan" | "copy" | "verify" | "restore" | "publish" | "done";
  files: number;
  bytes: number;
  totalFiles: number;
  totalBytes: number;
  /** The file being copied, or the last one done. */
  current?: string;
  /** A copy to another destination (issue 11): that destination's name; absent for the set's own folder. */
  destination?: string;
  /** Bytes per second since the phase began, by the run's clock (set by src/ops, not the pipelines). */
  rate?: number;
}

export type ProgressCallback = (p: Progress) => void;
