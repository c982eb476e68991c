import type { BackupMode, BackupType, Entry, Manifest, Warning } from "../core/types.ts";
import type { CopyResult, Sink } from "../platform/copy.ts";
import type { SourceReader } from "../source/reader.ts";

export interface WriteJob {
  /** The temporary backup folder, renamed into place by the pipeline once the manifest is in it. */
  tmp: string;
  /** The backup's final name (what file entries' `from` must say). */
  name: string;
  set: string;
  mode: BackupMode;
  parent: string | null;
  /** sha256 of the parent's manifest.json, and the backups before this one oldest first (its chain). */
  parentDigest?: string | null;
  ancestors?: string[];
  /** The manifest as it will roughly be (placeholder digests): lets a writer size room for it. */
  draftManifest(): string;
  reader: SourceReader;
  /** Folders to create (parents first), files to store, symlinks to record. */
  dirs: Entry[];
  files: Entry[];
  symlinks: Entry[];
  deletions: string[];
  warn(w: Warning): void;
  /** Bytes of the file being stored were copied; may throw (a cancelled run) to stop the copy. */
  onBytes(n: number): void;
  /** A file's copy begins; may throw (a cancelled run) to stop before it. */
  onStart?(e: Entry): void;
  onFile(e: Entry): void;
  /** Files at least this long get a block map (default BLOCKS_MIN, src/snapshot/blocks.ts). */
  blockMin?: number;
  /** The parent's entry for a path (its block map lets a changed file store only changed blocks). */
  blockParent?(path: string): Entry | undefined;
}

export interface WriteResult {
  /** Stored files with their sha256, size and `from` set to the backup's name. */
  stored: Map<string, Entry>;
  /** Files that could not be read: the pipeline keeps the parent's copy or leaves them out. */
  failed: Set<string>;
}

/** The two backup types are two writers behind one interface; the pipeline does not know which. */
export interface BackupWriter {
  readonly type: BackupType;
  write(job: WriteJob): Promise<WriteResult>;
  /** Called with the finished manifest before the folder is made durable and renamed. */
  finish(job: WriteJob, manifest: Manifest, manifestText: string): Promise<void>;
  /**
   * Release what the writer holds open when the run stops before or during finish (a cancel, a
   * failure): the staging area is removed next. Never throws.
   */
  abort?(): Promise<void>;
}

/**
 * A file that could not be read: a warning and a failed file when the error is one a run goes
 * on after (gone, permission denied…), else the error is thrown and the run fails.
 */
export function skipUnreadable(job: WriteJob, failed: Set<string>, path: string, err: unknown): void {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (!isSkippableReadError(code)) throw err;
  failed.add(path);
  job.warn({ path, code: code === "ENOENT" ? "VANISHED" : "UNREADABLE", message: (err as Error).message });
}

/** Read errors that make a file a warning, not a failed run. */
export function isSkippableReadError(code: string | undefined): boolean {
  return code === "ENOENT" || code === "EACCES" || code === "EPERM" || code === "ELOOP" || code === "EISDIR";
}

/**
 * One stored file's content as a reader hands it out. `data`: the content whole, when it was small
 * enough to be read in one go (the caller then writes it with synchronous calls); `copy` hashes the
 * content, writing it to `out` (a file, or a sink such as holeSink's) when given.
 */
export interface StoredContent {
  data?: Buffer;
  copy(out: Sink | undefined, onBytes?: (n: number) => void, opts?: ContentCopy): Promise<CopyResult>;
}

/**
 * `hash: false`: the caller hashes what it makes of the content itself (a file assembled from
 * blocks): the copy's `sha256` is then "" and the content is not hashed twice.
 */
export interface ContentCopy {
  hash?: boolean;
}

/** A stored file the backup does not hold (a compressed payload without that member). */
export class NotStored extends Error {}

/** Damage of a backup as a whole, beyond its stored files; `readable` false: its files cannot be read at all. */
export interface WholeCheck {
  problems: { path?: string; problem: string }[];
  readable: boolean;
}

/**
 * The read side of a format: restore and verify ask a backup for its stored files through this,
 * never knowing its type (open one with openBackupReader, src/format/open.ts).
 */
export interface BackupReader {
  readonly type: BackupType;
  readonly name: string;
  /**
   * Visit every file of `wanted` (entries this backup stores), in the order that is cheapest for
   * the format: a separate backup file by file (`concurrency` at once), a compressed one in one
   * pass front to back. A file stored twice (re-read because it changed) is visited twice: the
   * last is what the manifest describes. A file that cannot be opened, or that the backup does not
   * hold (NotStored), goes to `unread` (which may throw to stop); names come from the manifest,
   * never from what is stored. Throws when the backup cannot be read through (a damaged payload).
   */
  readAll(
    wanted: Entry[],
    visit: (e: Entry, content: StoredContent) => Promise<void>,
    opts: { concurrency?: number; unread: (e: Entry, err: unknown) => void },
  ): Promise<void>;
  /** What verify checks beyond the files: a compressed payload against its header and manifest. */
  checkWhole(manifestDigest: string): Promise<WholeCheck>;
}
