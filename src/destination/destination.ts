import type { Readable } from "node:stream";
import type { Clock } from "../platform/clock.ts";

/**
 * Where backups live: the one interface backup, restore, verify, list, prune, the daemon and the
 * catalog use to reach a set's backups (docs/design.md "Destinations"). `local` (a folder) is the
 * first implementation; SFTP, S3 and SMB implement the same contract
 * (test/destination-contract.test.ts), so the layout is the same everywhere: at the top, one
 * entry per backup named `<L>_YYYY_MM_DD_HH_MM_SS`, holding `manifest.json` and either `files/…`
 * (separate) or `<name>.sh` (compressed).
 *
 * Names given to these methods are checked backup names and checked relative paths (manifest
 * entries already are); an implementation still refuses anything that would leave the backup.
 * Errors: a missing backup or file is an error whose `code` is "ENOENT" (errnoCode() sees it);
 * anything else is a BschedError naming the destination and the fix, or an OS error the caller
 * words with fromOsError.
 */
export interface Destination {
  /** The name it has in the config (`folder` for a set's own backup folder). */
  readonly name: string;
  /** Where it is, for messages and the catalog: a path, or a URL without credentials. */
  readonly where: string;
  /**
   * What a record, a listing or a message shows as the place of a backup, or of `file` in it (a
   * path, or a URL): messages name exactly what they named before destinations existed.
   */
  locationOf(backup: string, file?: string): string;

  /** Check it can be written to, creating what it may create (a local folder, never its mount point). */
  ready(): Promise<void>;
  /** Every name at its top: backups, temporary entries of runs, lock files. */
  names(): Promise<string[]>;
  /** The regular files at a backup's top (`manifest.json`, `<name>.sh`) with their sizes. */
  topFiles(backup: string): Promise<{ name: string; size: number }[]>;
  /** Open a stored file for reading (`manifest.json`, `files/a/b`, `<name>.sh`): regular files only. */
  open(backup: string, file: string): Promise<ReadHandle>;
  /**
   * A small file whole (at most `max` bytes), or undefined when it is larger (then `open` it).
   * Local reads it with synchronous calls: thousands of small files are the common case.
   */
  readSmall(backup: string, file: string, max: number): Promise<Buffer | undefined>;
  /** A new backup's staging area, published atomically with its manifest (see Staging). */
  stage(backup: string): Promise<Staging>;
  /** Delete a published backup (retention); its manifest first, so a half-deleted one is never listed. */
  remove(backup: string): Promise<void>;
  /** Remove what crashed runs of this letter left (staging areas). Only the set's lock holder calls it. */
  removeLeftovers(letter: string): Promise<string[]>;
  /** The set's run lock: no two runs of a set at once on this destination. Held with a lease. */
  lock(setId: string, purpose: string, clock: Clock): Promise<Lease>;
  /**
   * The sha256 (hex) of a stored file as the server computes it from what it stored (sftp:
   * `sha256sum` run by the server over ssh), or undefined where the server offers none: then a
   * copy checked with `checksum` is read back. Never a digest recorded at upload time.
   */
  storedDigest?(backup: string, file: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Free bytes and allocation unit where known (a local disk, an SMB share); undefined elsewhere. */
  space(): Promise<{ free: number; blockSize: number } | undefined>;
  /**
   * The sizes of the regular files under a backup, by path there (`manifest.json`, `files/a/b`),
   * from one listing where the server lists a tree in one request (smb): a copy checked by size
   * then asks once, not once per file. A file it leaves out is opened instead (an odd name the
   * listing cannot tell apart): never taken as missing on its word alone.
   */
  storedSizes?(backup: string): Promise<Map<string, number>>;

  // Optional capabilities: what only some destinations can tell; callers do without them.

  /**
   * A compressed backup's self-extracting file lying at the top without its folder (copied alone
   * to a USB disk): a one-file, read-only Destination holding that backup. Local only.
   */
  loneFile?(backup: string): Promise<Destination | undefined>;
  /** The device of the file system it is on (local only): the SAME_FILESYSTEM notice compares it with the source's. */
  device?(): Promise<number | undefined>;
  /**
   * Remove what runs of process `pid` (this one, stopping) left: its staging areas and its run
   * locks, so an aborted daemon leaves nothing partial and no lock to go stale. Returns where.
   */
  removeOwnLeftovers?(pid: number): Promise<string[]>;
  /** When a published backup's folder was made, on the file system's own clock (isRacy in src/snapshot/diff.ts). */
  createdNs?(backup: string): Promise<bigint | undefined>;
  /**
   * End what it holds open (an SSH session, an S3 client's sockets). Whoever made the
   * destination (openDestination, destinationOf) closes it when done; it may be used again after
   * (a remote one reconnects). Never fails.
   */
  close?(): Promise<void>;
}

/** A stored file opened for reading. */
export interface ReadHandle {
  readonly size: number;
  /** Read up to `length` bytes at `position` into `buffer` at `offset`: the bytes read (0 at the end). */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** The bytes from `start` (default 0) to `end` inclusive (default: the end); closing it does not close the handle. */
  stream(opts?: { start?: number; end?: number; highWaterMark?: number }): Readable;
  close(): Promise<void>;
}

/**
 * A backup being written. The writers write into `dir`, a local folder (on a local destination:
 * the temporary folder beside where the backup will be; on a remote one: a local scratch folder,
 * uploaded by publish). Nothing in it is visible as a backup until `publish`, which makes it
 * durable and writes the manifest last: once published means "manifest present" everywhere.
 */
export interface Staging {
  readonly dir: string;
  /**
   * Stream a file of `size` bytes into the backup being staged, at `file` (`files/a/b`,
   * `<name>.sh`): how a copy moves a backup from one destination to another without a local
   * copy. Fails (nothing published) when the body ends before or after `size` bytes. Parent
   * folders are made as needed. The manifest is never put: publish writes it. A remote staging
   * may resolve once it has read the body whole, its last bytes still going up (s3): a failure
   * of those then fails a later put or publish, and publish waits for every put to end well.
   */
  put(file: string, body: Readable, size: number): Promise<void>;
  /** Make everything durable, write the manifest last, and make the backup visible under its name. */
  publish(manifestText: string): Promise<void>;
  /** Remove everything staged (a failed or cancelled run); never fails. */
  abort(): Promise<void>;
  /**
   * True when the server refuses a `put` unless what it stored is, byte for byte, what it was
   * sent (s3: each part sent with its Content-MD5, which the server checks, and the whole object's
   * ETag compared): a copy checked with `checksum` then needs no read back.
   */
  readonly checkedOnPut?: boolean;
}

/** A held lock; renewed while held, released once. */
export interface Lease {
  release(): Promise<void>;
}
