import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
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
    if (probe.code === 0) made.push(JSON.parse(probe.stdout));
    else t.diagnostic(`compressed part skipped: --type compressed failed here (${probe.stderr.trim()})`);
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
    assert.deepEqual(names.sort(), [...DBS, "notes.txt"].sort(), `${b.name}: restored tree`);
    for (const db of DBS) {
      const c = checkDb(path.join(out, db));
      assert.equal(c.integrity, "ok", `${b.name}/${db}: integrity_check`);
      assert.equal(c.counter, c.rows, `${b.name}/${db}: the invariant counter == rows`);
      assert.equal(c.journalMode, db === DBS[0] ? "wal" : "delete", `${b.name}/${db}: journal mode kept`);
      if (db === DBS[0]) counts.push(c.rows);
    }
  }
  assert.ok(made.length >= 3);
  // The writer was live: a later backup holds more events than the first.
  assert.ok(
    (counts.at(-1) as number) > (counts[0] as number),
    `rows grew across backups: ${counts.join(", ")}`,
  );
});
