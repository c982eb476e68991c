/**
 * The tables of a schema-1 catalog as bsched 0.1 created them (SCHEMA_V1 in
 * src/catalog/sqlite/sqlite-catalog.ts, before the migrations to 2 and 3): tests build old
 * catalogs with it to check that they migrate in place.
 */
export const CATALOG_V1_TABLES = `CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, set_id TEXT NOT NULL, planned TEXT, trigger TEXT NOT NULL,
  started_at TEXT, finished_at TEXT, status TEXT NOT NULL, warnings INTEGER NOT NULL DEFAULT 0,
  files INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0, backup TEXT, error TEXT,
  slots INTEGER NOT NULL DEFAULT 1);
CREATE INDEX runs_set ON runs(set_id, id);
CREATE TABLE marks (set_id TEXT PRIMARY KEY, planned TEXT NOT NULL);
CREATE TABLE backups (set_id TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, type TEXT NOT NULL,
  mode TEXT NOT NULL, parent TEXT, started_at TEXT NOT NULL, finished_at TEXT NOT NULL, files INTEGER NOT NULL,
  bytes INTEGER NOT NULL, stored_bytes INTEGER NOT NULL, warnings INTEGER NOT NULL, PRIMARY KEY (set_id, name));`;
