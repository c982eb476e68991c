import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import type { Entry, Manifest } from "../src/core/types.ts";
import { locateFromPath } from "../src/restore/locate.ts";
import { isDelta } from "../src/snapshot/blocks.ts";
import { checkDb, makeLiveServer, startWriter } from "./helpers/live.ts";

/**
 * Issue 13 "Must show": SQLite databases under continuous writes, backed up as a full and ten
 * block incrementals: every point restores, passes integrity_check with the writer's invariant,
 * and is byte for byte the snapshot that backup took (its sha256 in the manifest).
 */

const DBS = ["events-wal.db", "events-rollback.db"];
/** Block maps from 1 MiB: the databases are a few MB (the default threshold is 8 MiB). */
const ENV = { BSCHED_BLOCK_MIN: String(1 << 20) };

/** The state a backup restores (an incremental's manifest lists only its changes: src/snapshot/state.ts). */
async function manifestOf(folder: string): Promise<Manifest> {
  return (await locateFromPath(folder)).manifest;
}

for (const type of ["separate", "compressed"] as const) {
  test(`${type}: live SQLite databases, a full and 10 block incrementals, every point restores exactly`, async (t) => {
    const s = await makeLiveServer({ setExtra: `    type: ${type}\n` });
    const writer = startWriter(
      [`${path.join(s.data, DBS[0] as string)}:wal`, `${path.join(s.data, DBS[1] as string)}:delete`],
      2500,
    );
    const made: { name: string; path: string }[] = [];
    try {
      await writer.ready;
      for (let i = 0; i <= 10; i++) {
        const r = await s.cli(["backup", "data", "--json", ...(i === 0 ? ["--mode", "full"] : [])], ENV);
        assert.equal(r.code, 0, r.stderr);
        made.push(JSON.parse(r.stdout));
      }
    } finally {
      t.diagnostic(`the writer committed ${await writer.stop()} rounds during the test`);
    }
    let deltas = 0;
    let stored = 0;
    let whole = 0;
    const rows: number[] = [];
    for (const b of made) {
      const m = await manifestOf(b.path);
      const out = path.join(s.dir, `out-${b.name}`);
      const r = await s.cli(["restore", "data", "--backup", b.name, "--to", out]);
      assert.equal(r.code, 0, r.stderr);
      for (const db of DBS) {
        const e = m.entries.find((x) => x.path === db) as Entry;
        if (m.mode === "incremental" && e.from === b.name) {
          if (isDelta(e)) deltas++;
          whole += e.size ?? 0;
        }
        const c = checkDb(path.join(out, db));
        assert.equal(c.integrity, "ok", `${b.name}/${db}: integrity_check`);
        assert.equal(c.counter, c.rows, `${b.name}/${db}: the invariant counter == rows`);
        const sha = createHash("sha256")
          .update(await fs.readFile(path.join(out, db)))
          .digest("hex");
        assert.equal(sha, e.sha256, `${b.name}/${db}: byte for byte the snapshot the backup took`);
        if (db === DBS[0]) rows.push(c.rows);
      }
      if (m.mode === "incremental") stored += m.totals.storedBytes;
    }
    t.diagnostic(`${deltas} database versions stored as blocks; ${stored} bytes stored of ${whole} changed`);
    assert.ok(deltas >= 10, `most changed databases are stored as blocks (${deltas})`);
    assert.ok(
      stored < whole / 2,
      `the incrementals store less than half the changed files (${stored} of ${whole})`,
    );
    assert.ok((rows.at(-1) as number) > (rows[0] as number), `rows grew: ${rows.join(", ")}`);
  });
}

test("large: a 200 MB SQLite database, 1 % of its rows updated, at the default threshold: only changed blocks stored", {
  skip: process.env.BSCHED_SKIP_LARGE ? "BSCHED_SKIP_LARGE is set" : false,
}, async () => {
  const s = await makeLiveServer({ prefix: "bsched-large-blocks-" });
  const file = path.join(s.data, "archive.db");
  const db = new DatabaseSync(file);
  db.exec("PRAGMA journal_mode=DELETE; CREATE TABLE ev (id INTEGER PRIMARY KEY, note TEXT, payload BLOB)");
  db.exec(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 200000)
             INSERT INTO ev (note, payload) SELECT 'seed', randomblob(1000) FROM s`);
  const made: string[] = [];
  const backup = async () => {
    const r = await s.cli(["backup", "data", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    made.push(JSON.parse(r.stdout).name);
  };
  try {
    await backup();
    for (let round = 0; round < 3; round++) {
      // 1 % of the rows, in runs of 20 consecutive ids, and a few hundred appended.
      db.exec("BEGIN");
      const upd = db.prepare("UPDATE ev SET note = ? WHERE id BETWEEN ? AND ?");
      for (let i = 0; i < 100; i++) {
        const at = 1 + ((i * 1999 + round * 7919) % 199_980);
        upd.run(`round ${round}`, at, at + 19);
      }
      db.exec("INSERT INTO ev (note, payload) SELECT 'new', randomblob(1000) FROM ev LIMIT 500");
      db.exec("COMMIT");
      await backup();
    }
  } finally {
    db.close();
  }
  const size = (await fs.stat(file)).size;
  for (const name of made.slice(1)) {
    const m = await manifestOf(path.join(s.backups, name));
    assert.ok(m.totals.storedBytes < size / 5, `${name} stored ${m.totals.storedBytes} of ${size} bytes`);
  }
  const out = path.join(s.dir, "out");
  const r = await s.cli(["restore", "data", "--to", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(checkDb2(path.join(out, "archive.db")), "ok");
  const a = await fs.readFile(file);
  assert.ok(a.equals(await fs.readFile(path.join(out, "archive.db"))), "the newest state, byte for byte");
});

function checkDb2(file: string): string {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return (db.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check;
  } finally {
    db.close();
  }
}
