import { type BigIntStats, closeSync, fstatSync, openSync, readSync } from "node:fs";
import fs, { type FileHandle } from "node:fs/promises";
import path from "node:path";
import { backup, DatabaseSync } from "node:sqlite";
import { pathToFileURL } from "node:url";
import { errnoCode } from "../core/errors.ts";
import type { Entry } from "../core/types.ts";

/** The first 16 bytes of every SQLite 3 database file (https://sqlite.org/fileformat.html). */
export const SQLITE_HEADER = Buffer.from("SQLite format 3\0", "latin1");
/** The header is 100 bytes: a shorter file cannot be a database holding anything. */
const MIN_DB_SIZE = 100;
/** Files SQLite keeps beside a database while it is in use; never copied raw (see docs/live-databases.md). */
export const SQLITE_COMPANIONS = ["-wal", "-journal", "-shm"] as const;
/**
 * How long our read connection waits for the application's write lock before giving up. In
 * rollback-journal mode a writer holds it only while it commits; in WAL mode readers never wait.
 */
const BUSY_TIMEOUT_MS = 15_000;
/** All pages in one step: the copy is one read transaction, so other connections cannot restart it. */
const ALL_PAGES = 0x7fffffff;

/**
 * A database file is a whole number of pages (512 bytes at least, a power of two): the size
 * alone rules out nearly every other file without reading it.
 */
export function couldBeSqlite(size: bigint | number): boolean {
  const n = Number(size);
  return n >= MIN_DB_SIZE && n % 512 === 0;
}

export async function hasSqliteHeader(fh: FileHandle, size: bigint | number): Promise<boolean> {
  if (!couldBeSqlite(size)) return false;
  const buf = Buffer.alloc(SQLITE_HEADER.length);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  return bytesRead === buf.length && buf.equals(SQLITE_HEADER);
}

export interface SnapshotResult {
  pages: number;
  /** Time the copy ran, i.e. how long the read transaction (a SHARED lock in rollback mode) was held. */
  ms: number;
}

/**
 * Copy a live SQLite database to `dest` with SQLite's online backup API. The copy is one read
 * transaction: a consistent point in time in WAL and rollback-journal modes, whatever the
 * application commits meanwhile.
 *
 * The connection is read-write but never creates a file (URI `mode=rw`): like any SQLite
 * client it may then have to recover what a crashed application left (roll back a hot journal),
 * and when no one else has the database open it removes on close the `-wal`/`-shm` files it had
 * to create. A read-only connection would leave those behind in the source folder, and cannot
 * recover; it is the fallback for a database bsched may only read.
 */
export async function snapshotSqlite(abs: string, dest: string): Promise<SnapshotResult> {
  try {
    return await snapshotWith(`${pathToFileURL(abs).href}?mode=rw`, dest, false);
  } catch (first) {
    await fs.rm(dest, { force: true });
    try {
      return await snapshotWith(abs, dest, true);
    } catch {
      throw first;
    }
  }
}

/** The file's stat when it starts with the SQLite header; undefined otherwise or when unreadable
 * (the writer reports an unreadable file when it tries to copy it). */
function headerStat(abs: string): BigIntStats | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(abs, "r");
    const st = fstatSync(fd, { bigint: true });
    if (!couldBeSqlite(st.size)) return undefined;
    const buf = Buffer.alloc(SQLITE_HEADER.length);
    return readSync(fd, buf, 0, buf.length, 0) === buf.length && buf.equals(SQLITE_HEADER) ? st : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

async function snapshotWith(location: string, dest: string, readOnly: boolean): Promise<SnapshotResult> {
  const db = new DatabaseSync(location, { readOnly, timeout: BUSY_TIMEOUT_MS });
  try {
    // Our own read transaction first: taking it waits out a committing writer through the busy
    // timeout, and the backup step then copies inside it (SQLite only opens one if none is open).
    db.exec("BEGIN");
    db.prepare("SELECT count(*) FROM sqlite_schema").get();
    const t0 = performance.now();
    try {
      const pages = await backup(db, dest, { rate: ALL_PAGES });
      return { pages, ms: performance.now() - t0 };
    } finally {
      db.exec("COMMIT");
    }
  } finally {
    db.close();
  }
}

/** A read transaction held on a database: while it lasts, no writer can change the main file. */
export interface ReadLock {
  release(): void;
}

/**
 * In rollback-journal mode, a read transaction (a SHARED lock) keeps every writer from writing
 * the main file until it ends: the file can then be read as it is, byte for byte, with no
 * snapshot copy — the same writer pause the online backup would cause, and half the I/O.
 * Returns undefined for a database in WAL mode (its committed state is spread over the main
 * file and the -wal: only the online backup gives one consistent file) or one SQLite cannot open.
 */
export function holdRollbackReadLock(abs: string): ReadLock | undefined {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(`${pathToFileURL(abs).href}?mode=rw`, { timeout: BUSY_TIMEOUT_MS });
    const mode = (db.prepare("PRAGMA journal_mode").get() as { journal_mode?: string } | undefined)
      ?.journal_mode;
    if (mode === undefined || mode.toLowerCase() === "wal") {
      db.close();
      return undefined;
    }
    db.exec("BEGIN");
    // The first read takes the SHARED lock (and rolls back a crashed writer's hot journal).
    db.prepare("SELECT count(*) FROM sqlite_schema").get();
    const held = db;
    return {
      release() {
        try {
          held.exec("COMMIT");
        } finally {
          held.close();
        }
      },
    };
  } catch {
    try {
      db?.close();
    } catch {}
    return undefined;
  }
}

/**
 * The database's change key: the newest ctime of the file and its WAL. In WAL mode commits only
 * touch `-wal` (the main file changes at checkpoints), so the main file's own ctime would let an
 * incremental backup miss committed data.
 */
export async function sqliteChangeKey(abs: string, st: BigIntStats): Promise<bigint> {
  try {
    const wal = await fs.stat(`${abs}-wal`, { bigint: true });
    // bigint: Math.max does not take them.
    if (wal.ctimeNs > st.ctimeNs) return wal.ctimeNs;
    return st.ctimeNs;
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return st.ctimeNs;
    throw e;
  }
}

/**
 * Scanned entries as a live-database backup sees them: recognised SQLite databases carry their
 * change key, and their `-wal`/`-journal`/`-shm` companions are left out (the snapshot already
 * holds their committed content; a raw copy would be torn, and a stale `-wal` restored beside a
 * database can corrupt it).
 */
export async function withSqliteKeys(
  root: string,
  entries: Entry[],
): Promise<{ entries: Entry[]; isCompanion: (rel: string) => boolean }> {
  const dbs = new Set<string>();
  const out: Entry[] = [];
  for (const e of entries) {
    if (e.kind !== "file" || !couldBeSqlite(e.size ?? 0)) {
      out.push(e);
      continue;
    }
    const abs = path.join(root, e.path);
    // Synchronous: a 16-byte read per candidate costs less than thread-pool round trips.
    const st = headerStat(abs);
    if (st) {
      dbs.add(e.path);
      out.push({ ...e, ctimeNs: (await sqliteChangeKey(abs, st)).toString() });
    } else out.push(e);
  }
  const isCompanion = (rel: string) =>
    SQLITE_COMPANIONS.some((s) => rel.endsWith(s) && dbs.has(rel.slice(0, -s.length)));
  return { entries: out.filter((e) => !(e.kind === "file" && isCompanion(e.path))), isCompanion };
}
