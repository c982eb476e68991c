import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { checkDb, makeLiveServer, startWriter } from "./helpers/live.ts";

const DBS = ["events-wal.db", "events-rollback.db"];
const COMPANION = /-(wal|journal|shm)$/;

interface Summary {
  name: string;
  path: string;
  type: string;
  warnings: { code: string }[];
}

test("SQLite databases in WAL and rollback-journal mode back up consistently while another process commits", async (t) => {
  const s = await makeLiveServer();
  await fs.writeFile(path.join(s.data, "notes.txt"), "plain file beside the databases\n");
  const writer = startWriter(
    [`${path.join(s.data, DBS[0] as string)}:wal`, `${path.join(s.data, DBS[1] as string)}:delete`],
    3000,
  );
  const made: Summary[] = [];
  try {
    await writer.ready;
    // Several backups in a row while the writer commits: a full, then incrementals.
    for (const args of [["--mode", "full"], [], []]) {
      const r = await s.cli(["backup", "data", "--json", ...args]);
      assert.equal(r.code, 0, r.stderr);
      made.push(JSON.parse(r.stdout));
    }
    const probe = await s.cli(["backup", "data", "--json", "--type", "compressed", "--mode", "full"]);
    // The compressed type must hold the same promise: a failure here fails the test.
    assert.equal(probe.code, 0, `--type compressed failed: ${probe.stderr}`);
    made.push(JSON.parse(probe.stdout));
  } finally {
    const commits = await writer.stop();
    t.diagnostic(`the writer committed ${commits} rounds during the test`);
  }

  const counts: number[] = [];
  for (const b of made) {
    assert.deepEqual(b.warnings, [], `${b.name}: no warnings`);
    if (b.type === "separate") {
      const stored = await fs.readdir(path.join(b.path, "files"));
      assert.deepEqual(
        stored.filter((n) => COMPANION.test(n)),
        [],
        "no -wal/-journal/-shm copied raw",
      );
    }
    const out = path.join(s.dir, `out-${b.name}`);
    const r = await s.cli(["restore", "data", "--backup", b.name, "--to", out]);
    assert.equal(r.code, 0, r.stderr);
    const names = await fs.readdir(out);
    assert.deepEqual(
      names.sort(),
      [...DBS, ".bsched-restored", "notes.txt"].sort(),
      `${b.name}: restored tree`,
    );
    for (const db of DBS) {
      const c = checkDb(path.join(out, db));
      assert.equal(c.integrity, "ok", `${b.name}/${db}: integrity_check`);
      assert.equal(c.counter, c.rows, `${b.name}/${db}: the invariant counter == rows`);
      assert.equal(c.journalMode, db === DBS[0] ? "wal" : "delete", `${b.name}/${db}: journal mode kept`);
      if (db === DBS[0]) counts.push(c.rows);
    }
  }
  assert.equal(made.length, 4);
  assert.equal(made.at(-1)?.type, "compressed");
  // The writer was live: a later backup holds more events than the first.
  assert.ok(
    (counts.at(-1) as number) > (counts[0] as number),
    `rows grew across backups: ${counts.join(", ")}`,
  );
});

test("a WAL database whose commits sit in its -wal only is stored again by the next incremental", async () => {
  const s = await makeLiveServer();
  const file = path.join(s.data, "cards.db");
  const db = new DatabaseSync(file);
  // No automatic checkpoint: the main file stays as it is; every commit lands in cards.db-wal.
  db.exec(
    "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE c (id INTEGER PRIMARY KEY, name TEXT);",
  );
  db.exec("INSERT INTO c (name) VALUES ('first')");
  // Everything in the main file: its size is the database's, as the snapshot's will be.
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  // Companion-looking names of no SQLite database are ordinary files.
  await fs.writeFile(path.join(s.data, "notes.txt-wal"), "not a companion");
  try {
    const full = await s.cli(["backup", "data", "--json", "--mode", "full"]);
    assert.equal(full.code, 0, full.stderr);
    const mainBefore = await fs.stat(file, { bigint: true });
    // Same size, same main file: only the -wal knows.
    db.exec("UPDATE c SET name = 'changed' WHERE id = 1");
    const mainAfter = await fs.stat(file, { bigint: true });
    assert.equal(mainAfter.mtimeNs, mainBefore.mtimeNs, "the commit did not touch the main file");
    const inc = await s.cli(["backup", "data", "--json"]);
    assert.equal(inc.code, 0, inc.stderr);
    const summary = JSON.parse(inc.stdout);
    assert.equal(summary.mode, "incremental");
    const manifest = await fs.readFile(path.join(summary.path, "manifest.json"), "utf8");
    const entry = (JSON.parse(manifest).entries as { path: string; from?: string }[]).find(
      (e) => e.path === "cards.db",
    );
    assert.equal(entry?.from, summary.name, "the database is stored again by the incremental");
    const out = path.join(s.dir, "out");
    const r = await s.cli(["restore", "data", "--to", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await fs.readdir(out)).sort(), [".bsched-restored", "cards.db", "notes.txt-wal"]);
    const copy = new DatabaseSync(path.join(out, "cards.db"), { readOnly: true });
    assert.deepEqual(
      copy
        .prepare("SELECT name FROM c ORDER BY id")
        .all()
        .map((x) => (x as { name: string }).name),
      ["changed"],
    );
    copy.close();
  } finally {
    db.close();
  }
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("backing up a database no one has open leaves its folder as it was (no -wal/-shm left behind)", async () => {
  const s = await makeLiveServer();
  const db = new DatabaseSync(path.join(s.data, "closed.db"));
  db.exec("PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);");
  db.close();
  assert.deepEqual(await fs.readdir(s.data), ["closed.db"]);
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await fs.readdir(s.data), ["closed.db"]);
  await fs.rm(s.dir, { recursive: true, force: true });
});
