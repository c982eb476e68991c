import fs from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { BschedError } from "../../core/errors.ts";
import {
  type BackupRecord,
  type Catalog,
  type DrillCheck,
  type DrillRecord,
  type NewRun,
  OWN_FOLDER,
  type RunOutcome,
  type RunRecord,
  type RunStatus,
  type RunTrigger,
} from "../catalog.ts";
import { currentOwner } from "../interrupted.ts";

export const CATALOG_FILE = "catalog.db";
/** Bump with a migration step in `migrate` whenever the tables change. */
export const SCHEMA_VERSION = 5;

const SCHEMA_V1 = `
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  set_id TEXT NOT NULL,
  planned TEXT,
  trigger TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  status TEXT NOT NULL,
  warnings INTEGER NOT NULL DEFAULT 0,
  files INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  backup TEXT,
  error TEXT,
  slots INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX runs_set ON runs(set_id, id);
CREATE TABLE marks (
  set_id TEXT PRIMARY KEY,
  planned TEXT NOT NULL
);
CREATE TABLE backups (
  set_id TEXT NOT NULL,
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  type TEXT NOT NULL,
  mode TEXT NOT NULL,
  parent TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  stored_bytes INTEGER NOT NULL,
  warnings INTEGER NOT NULL,
  PRIMARY KEY (set_id, name)
);
`;

/**
 * Version 2 (issue 9): each run records the process that runs it (a `running` run whose process
 * is gone was interrupted), and each backup its size on disk. Columns are only added, with NULL
 * for the rows already there, so no row is rewritten.
 */
const SCHEMA_V2 = `
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN host TEXT;
ALTER TABLE runs ADD COLUMN pid_start TEXT;
ALTER TABLE backups ADD COLUMN disk_bytes INTEGER;
`;

/**
 * Version 3 (issue 10): a failed run keeps its error's code and hint beside the message, and a
 * backup is known by its destination and name instead of a local path (`folder`: the set's own
 * backup folder, where every backup of an older catalog is), the destination being part of its
 * key so that copies of one backup on several destinations are one row each. SQLite cannot change
 * a primary key: the table is copied into its new shape. The path is not kept: it is the set's
 * folder joined with the name, computed where shown, and the folders are the truth anyway.
 */
const SCHEMA_V3 = `
ALTER TABLE runs ADD COLUMN error_code TEXT;
ALTER TABLE runs ADD COLUMN error_hint TEXT;
CREATE TABLE backups_v3 (
  set_id TEXT NOT NULL,
  destination TEXT NOT NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  mode TEXT NOT NULL,
  parent TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  stored_bytes INTEGER NOT NULL,
  disk_bytes INTEGER,
  warnings INTEGER NOT NULL,
  PRIMARY KEY (set_id, destination, name)
);
INSERT INTO backups_v3 (set_id, destination, name, type, mode, parent, started_at, finished_at, files, bytes,
  stored_bytes, disk_bytes, warnings)
  SELECT set_id, 'folder', name, type, mode, parent, started_at, finished_at, files, bytes, stored_bytes, disk_bytes,
  warnings FROM backups;
DROP TABLE backups;
ALTER TABLE backups_v3 RENAME TO backups;
`;

/**
 * Version 4 (issue 11): how the last copy of each set to each destination ended, so `status`
 * shows a copy that is failing (the backups on a destination are the truth for what it holds).
 */
const SCHEMA_V4 = `
CREATE TABLE copies (
  set_id TEXT NOT NULL,
  destination TEXT NOT NULL,
  at TEXT NOT NULL,
  ok INTEGER NOT NULL,
  copied INTEGER NOT NULL,
  newest TEXT,
  error TEXT,
  error_code TEXT,
  error_hint TEXT,
  PRIMARY KEY (set_id, destination)
);
`;

/**
 * Version 5 (issue 14): the evidence of each restore drill (docs/design.md "Restore drills"): what
 * was restored from where, when, how long, and every check's result (JSON), one row per restore.
 */
const SCHEMA_V5 = `
CREATE TABLE drills (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  set_id TEXT NOT NULL,
  destination TEXT NOT NULL,
  backup TEXT,
  pick TEXT NOT NULL,
  trigger TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  restore_ms INTEGER,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  ok INTEGER NOT NULL,
  checks TEXT NOT NULL,
  error TEXT,
  error_code TEXT,
  error_hint TEXT
);
CREATE INDEX drills_set ON drills(set_id, destination, id);
`;

function migrate(db: DatabaseSync, file: string): void {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number };
  const v = row.user_version;
  if (v > SCHEMA_VERSION) {
    throw new BschedError(
      "CATALOG",
      `catalog ${file} has schema version ${v}; this bsched knows up to ${SCHEMA_VERSION}`,
      {
        hint: "run the newer bsched that wrote it, or `bsched catalog rebuild` to recreate it from the backup folders",
      },
    );
  }
  if (v === SCHEMA_VERSION) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    if (v < 1) db.exec(SCHEMA_V1);
    if (v < 2) db.exec(SCHEMA_V2);
    if (v < 3) db.exec(SCHEMA_V3);
    if (v < 4) db.exec(SCHEMA_V4);
    if (v < 5) db.exec(SCHEMA_V5);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    throw e;
  }
}

function toRun(r: Record<string, unknown>): RunRecord {
  return {
    id: Number(r.id),
    set: String(r.set_id),
    planned: (r.planned as string | null) ?? null,
    trigger: r.trigger as RunTrigger,
    startedAt: (r.started_at as string | null) ?? null,
    finishedAt: (r.finished_at as string | null) ?? null,
    status: r.status as RunStatus,
    warnings: Number(r.warnings),
    files: Number(r.files),
    bytes: Number(r.bytes),
    backup: (r.backup as string | null) ?? null,
    error: (r.error as string | null) ?? null,
    errorCode: (r.error_code as string | null) ?? null,
    errorHint: (r.error_hint as string | null) ?? null,
    slots: Number(r.slots),
    pid: r.pid === null || r.pid === undefined ? null : Number(r.pid),
    host: (r.host as string | null) ?? null,
    pidStart: (r.pid_start as string | null) ?? null,
  };
}

function toBackup(r: Record<string, unknown>): BackupRecord {
  return {
    set: String(r.set_id),
    name: String(r.name),
    destination: String(r.destination),
    type: r.type as BackupRecord["type"],
    mode: r.mode as BackupRecord["mode"],
    parent: (r.parent as string | null) ?? null,
    startedAt: String(r.started_at),
    finishedAt: String(r.finished_at),
    files: Number(r.files),
    bytes: Number(r.bytes),
    storedBytes: Number(r.stored_bytes),
    diskBytes: r.disk_bytes === null || r.disk_bytes === undefined ? null : Number(r.disk_bytes),
    warnings: Number(r.warnings),
  };
}

function toDrill(r: Record<string, unknown>): DrillRecord {
  let checks: DrillCheck[] = [];
  try {
    checks = JSON.parse(String(r.checks)) as DrillCheck[];
  } catch {
    // A damaged cell: the drill's outcome (ok, error) still stands.
  }
  return {
    id: Number(r.id),
    set: String(r.set_id),
    destination: String(r.destination),
    backup: (r.backup as string | null) ?? null,
    pick: r.pick as DrillRecord["pick"],
    trigger: r.trigger as RunTrigger,
    startedAt: String(r.started_at),
    finishedAt: String(r.finished_at),
    restoreMs: r.restore_ms === null || r.restore_ms === undefined ? null : Number(r.restore_ms),
    files: Number(r.files),
    bytes: Number(r.bytes),
    ok: Number(r.ok) === 1,
    checks,
    error: (r.error as string | null) ?? null,
    errorCode: (r.error_code as string | null) ?? null,
    errorHint: (r.error_hint as string | null) ?? null,
  };
}

/**
 * The catalog in `<state>/catalog.db`: WAL so `status` reads while the daemon writes, a busy
 * timeout so two writers wait for each other instead of failing.
 */
export function openSqliteCatalog(file: string): Catalog {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file, { timeout: 10_000 });
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    migrate(db, file);
  } catch (e) {
    if (e instanceof BschedError) throw e;
    throw new BschedError("CATALOG", `cannot open the catalog ${file}: ${(e as Error).message}`, {
      hint: "`bsched catalog rebuild` recreates it from the backup folders (the backups themselves are not touched)",
      cause: e,
    });
  }
  const q = {
    start: db.prepare(
      `INSERT INTO runs (set_id, planned, trigger, started_at, finished_at, status, error, error_code, error_hint,
       slots, pid, host, pid_start) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    finish: db.prepare(
      `UPDATE runs SET finished_at = ?, status = ?, warnings = COALESCE(?, warnings), files = COALESCE(?, files),
       bytes = COALESCE(?, bytes), backup = COALESCE(?, backup), error = COALESCE(?, error),
       error_code = COALESCE(?, error_code), error_hint = COALESCE(?, error_hint) WHERE id = ?`,
    ),
    get: db.prepare("SELECT * FROM runs WHERE id = ?"),
    mark: db.prepare(
      `INSERT INTO marks (set_id, planned) VALUES (?, ?)
       ON CONFLICT(set_id) DO UPDATE SET planned = excluded.planned
       WHERE julianday(excluded.planned) > julianday(marks.planned)`,
    ),
    lastMark: db.prepare("SELECT planned FROM marks WHERE set_id = ?"),
    putBackup: db.prepare(
      `INSERT OR REPLACE INTO backups (set_id, name, destination, type, mode, parent, started_at, finished_at, files, bytes,
       stored_bytes, disk_bytes, warnings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    removeBackup: db.prepare("DELETE FROM backups WHERE set_id = ? AND destination = ? AND name = ?"),
    putCopy: db.prepare(
      `INSERT OR REPLACE INTO copies (set_id, destination, at, ok, copied, newest, error, error_code, error_hint)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    addDrill: db.prepare(
      `INSERT INTO drills (set_id, destination, backup, pick, trigger, started_at, finished_at, restore_ms, files, bytes,
       ok, checks, error, error_code, error_hint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
  };
  const owner = currentOwner();
  const tx = <T>(fn: () => T): T => {
    db.exec("BEGIN IMMEDIATE");
    try {
      const r = fn();
      db.exec("COMMIT");
      return r;
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
  };
  return {
    startRun(r: NewRun) {
      return tx(() => {
        const res = q.start.run(
          r.set,
          r.planned,
          r.trigger,
          r.startedAt,
          r.finishedAt ?? null,
          r.status ?? "running",
          r.error ?? null,
          r.errorCode ?? null,
          r.errorHint ?? null,
          r.slots ?? 1,
          owner.pid,
          owner.host,
          owner.pidStart,
        );
        if (r.planned) q.mark.run(r.set, r.planned);
        return Number(res.lastInsertRowid);
      });
    },
    finishRun(id: number, o: RunOutcome) {
      const res = q.finish.run(
        o.finishedAt,
        o.status,
        o.warnings ?? null,
        o.files ?? null,
        o.bytes ?? null,
        o.backup ?? null,
        o.error ?? null,
        o.errorCode ?? null,
        o.errorHint ?? null,
        id,
      );
      if (Number(res.changes) !== 1) throw new Error(`no run ${id}`);
    },
    getRun(id) {
      const r = q.get.get(id) as Record<string, unknown> | undefined;
      return r ? toRun(r) : undefined;
    },
    runs(filter = {}) {
      const conds: string[] = [];
      const args: string[] = [];
      if (filter.set !== undefined) {
        conds.push("set_id = ?");
        args.push(filter.set);
      }
      if (filter.status !== undefined) {
        conds.push("status = ?");
        args.push(filter.status);
      }
      if (filter.statuses !== undefined) {
        conds.push(`status IN (${filter.statuses.map(() => "?").join(", ") || "NULL"})`);
        args.push(...filter.statuses);
      }
      // A run's time: when it started, else when it ended (a missed run), else its slot.
      if (filter.since !== undefined) {
        conds.push("COALESCE(started_at, finished_at, planned) >= ?");
        args.push(filter.since);
      }
      if (filter.until !== undefined) {
        conds.push("COALESCE(started_at, finished_at, planned) < ?");
        args.push(filter.until);
      }
      const where = conds.length === 0 ? "" : `WHERE ${conds.join(" AND ")}`;
      const limit = filter.limit === undefined ? "" : `LIMIT ${Math.max(0, Math.floor(filter.limit))}`;
      const stmt = db.prepare(`SELECT * FROM runs ${where} ORDER BY id DESC ${limit}`);
      return (stmt.all(...args) as Record<string, unknown>[]).map(toRun);
    },
    lastPlanned(set) {
      const r = q.lastMark.get(set) as { planned: string } | undefined;
      return r?.planned;
    },
    markPlanned(set, planned) {
      q.mark.run(set, planned);
    },
    putBackup(b) {
      q.putBackup.run(
        b.set,
        b.name,
        b.destination,
        b.type,
        b.mode,
        b.parent,
        b.startedAt,
        b.finishedAt,
        b.files,
        b.bytes,
        b.storedBytes,
        b.diskBytes,
        b.warnings,
      );
    },
    removeBackup(set, name, destination = OWN_FOLDER) {
      q.removeBackup.run(set, destination, name);
    },
    backups(set) {
      const where = set === undefined ? "" : "WHERE set_id = ?";
      const stmt = db.prepare(`SELECT * FROM backups ${where} ORDER BY started_at, name, destination`);
      const rows = (set === undefined ? stmt.all() : stmt.all(set)) as Record<string, unknown>[];
      return rows.map(toBackup);
    },
    putCopy(c) {
      q.putCopy.run(
        c.set,
        c.destination,
        c.at,
        c.ok ? 1 : 0,
        c.copied,
        c.newest,
        c.error,
        c.errorCode,
        c.errorHint,
      );
    },
    copies(set) {
      const where = set === undefined ? "" : "WHERE set_id = ?";
      const stmt = db.prepare(`SELECT * FROM copies ${where} ORDER BY set_id, destination`);
      const rows = (set === undefined ? stmt.all() : stmt.all(set)) as Record<string, unknown>[];
      return rows.map((r) => ({
        set: String(r.set_id),
        destination: String(r.destination),
        at: String(r.at),
        ok: Number(r.ok) === 1,
        copied: Number(r.copied),
        newest: (r.newest as string | null) ?? null,
        error: (r.error as string | null) ?? null,
        errorCode: (r.error_code as string | null) ?? null,
        errorHint: (r.error_hint as string | null) ?? null,
      }));
    },
    addDrill(d) {
      const res = q.addDrill.run(
        d.set,
        d.destination,
        d.backup,
        d.pick,
        d.trigger,
        d.startedAt,
        d.finishedAt,
        d.restoreMs === null ? null : Math.round(d.restoreMs),
        d.files,
        d.bytes,
        d.ok ? 1 : 0,
        JSON.stringify(d.checks),
        d.error,
        d.errorCode,
        d.errorHint,
      );
      return Number(res.lastInsertRowid);
    },
    drills(filter = {}) {
      const conds: string[] = [];
      const args: (string | number)[] = [];
      if (filter.set !== undefined) {
        conds.push("set_id = ?");
        args.push(filter.set);
      }
      if (filter.destination !== undefined) {
        conds.push("destination = ?");
        args.push(filter.destination);
      }
      if (filter.ok !== undefined) {
        conds.push("ok = ?");
        args.push(filter.ok ? 1 : 0);
      }
      const where = conds.length === 0 ? "" : `WHERE ${conds.join(" AND ")}`;
      const limit = filter.limit === undefined ? "" : `LIMIT ${Math.max(0, Math.floor(filter.limit))}`;
      const stmt = db.prepare(`SELECT * FROM drills ${where} ORDER BY id DESC ${limit}`);
      return (stmt.all(...args) as Record<string, unknown>[]).map(toDrill);
    },
    close() {
      if (db.isOpen) db.close();
    },
  };
}
