/** Domain vocabulary shared by every layer (see docs/design.md and SPEC). */

export type BackupType = "separate" | "compressed";
export type BackupMode = "full" | "incremental";
export type Frequency = "hourly" | "daily" | "weekly" | "monthly" | "every" | "now";
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
}

export interface Warning {
  path: string;
  code: string;
  message: string;
}

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
  formatVersion: 1;
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
  /** The whole state of the source at the time of the backup, sorted by path. */
  entries: Entry[];
  /** Paths present in the parent's state and gone from this one. */
  deletions: string[];
  totals: Totals;
  warnings: Warning[];
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

/** What `backup --json` and `list --json` print for one backup (SPEC). */
export interface BackupSummary {
  name: string;
  path: string;
  set: string;
  type: BackupType;
  mode: BackupMode;
  parent: string | null;
  files: number;
  bytes: number;
  warnings: Warning[];
  startedAt: string;
  finishedAt: string;
  storedFiles: number;
  /** Logical bytes of the files whose content this backup itself stores (as in the manifest's totals). */
  storedBytes: number;
  /** Bytes the backup takes on disk: the compressed type's `.sh`, or the stored files, plus the manifest. */
  diskBytes: number;
}

export interface Progress {
  phase: "scan" | "copy" | "verify" | "restore" | "done";
  files: number;
  bytes: number;
  totalFiles: number;
  totalBytes: number;
  current?: string;
}

export type ProgressCallback = (p: Progress) => void;
