import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, test } from "node:test";
import type { BackupRecord, Catalog } from "../src/catalog/catalog.ts";
import { memoryCatalog } from "../src/catalog/memory/memory-catalog.ts";
import { openSqliteCatalog, SCHEMA_VERSION } from "../src/catalog/sqlite/sqlite-catalog.ts";
import { CATALOG_V1_TABLES } from "./helpers/catalog-v1.ts";
import { tempDir } from "./helpers/cli.ts";

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

function backup(name: string, over: Partial<BackupRecord> = {}): BackupRecord {
  return {
    set: "data",
    name,
    destination: "folder",
    type: "separate",
    mode: "full",
    parent: null,
    startedAt: "2026-01-01T04:00:00.000Z",
    finishedAt: "2026-01-01T04:01:00.000Z",
    files: 3,
    bytes: 300,
    storedBytes: 300,
    diskBytes: 420,
    warnings: 0,
    ...over,
  };
}

/** One contract, two implementations: whatever the daemon relies on holds for both. */
function contract(kind: string, make: () => Promise<{ catalog: Catalog; reopen?: () => Catalog }>) {
  describe(`catalog contract: ${kind}`, () => {
    test("a run goes from running to its outcome; runs list newest first and filter by set", async () => {
      const { catalog: c } = await make();
      const a = c.startRun({
        set: "data",
        planned: "2026-01-01T04:00:00.000Z",
        trigger: "schedule",
        startedAt: "2026-01-01T04:00:01.000Z",
      });
      const b = c.startRun({
        set: "video",
        planned: null,
        trigger: "manual",
        startedAt: "2026-01-01T05:00:00.000Z",
      });
      assert.equal(c.getRun(a)?.status, "running");
      c.finishRun(a, {
        finishedAt: "2026-01-01T04:02:00.000Z",
        status: "warnings",
        warnings: 2,
        files: 10,
        bytes: 1000,
        backup: "D_2026_01_01_04_00_01",
      });
      c.finishRun(b, {
        finishedAt: "2026-01-01T05:00:01.000Z",
        status: "failed",
        error: "source missing",
        errorCode: "SOURCE_MISSING",
        errorHint: "create it or fix sets.video.source",
      });
      const ra = c.getRun(a);
      assert.deepEqual(
        {
          status: ra?.status,
          warnings: ra?.warnings,
          files: ra?.files,
          bytes: ra?.bytes,
          backup: ra?.backup,
          error: ra?.error,
          errorCode: ra?.errorCode,
          errorHint: ra?.errorHint,
          slots: ra?.slots,
        },
        {
          status: "warnings",
          warnings: 2,
          files: 10,
          bytes: 1000,
          backup: "D_2026_01_01_04_00_01",
          error: null,
          errorCode: null,
          errorHint: null,
          slots: 1,
        },
      );
      // A failed run keeps what the command printed: message, code and hint (schema version 3).
      const rb = c.getRun(b);
      assert.deepEqual(
        { error: rb?.error, errorCode: rb?.errorCode, errorHint: rb?.errorHint },
        {
          error: "source missing",
          errorCode: "SOURCE_MISSING",
          errorHint: "create it or fix sets.video.source",
        },
      );
      assert.deepEqual(
        c.runs().map((r) => r.id),
        [b, a],
      );
      assert.deepEqual(
        c.runs({ set: "data" }).map((r) => r.id),
        [a],
      );
      assert.deepEqual(
        c.runs({ limit: 1 }).map((r) => r.id),
        [b],
      );
      assert.equal(c.getRun(9999), undefined);
      c.close();
    });

    test("lastPlanned: the newest slot handled, from runs and marks, never moving back", async () => {
      const { catalog: c } = await make();
      assert.equal(c.lastPlanned("data"), undefined);
      c.markPlanned("data", "2026-01-01T00:00:00.000Z");
      assert.equal(c.lastPlanned("data"), "2026-01-01T00:00:00.000Z");
      c.startRun({
        set: "data",
        planned: "2026-01-02T04:00:00.000Z",
        trigger: "schedule",
        startedAt: "2026-01-02T04:00:00.000Z",
      });
      assert.equal(c.lastPlanned("data"), "2026-01-02T04:00:00.000Z");
      c.markPlanned("data", "2025-12-01T00:00:00.000Z");
      c.startRun({
        set: "data",
        planned: "2025-06-01T04:00:00.000Z",
        trigger: "schedule",
        startedAt: null,
        status: "missed",
        slots: 3,
      });
      assert.equal(c.lastPlanned("data"), "2026-01-02T04:00:00.000Z");
      assert.equal(c.lastPlanned("video"), undefined);
      assert.equal(c.runs({ limit: 1 })[0]?.slots, 3);
      assert.equal(c.runs({ limit: 1 })[0]?.status, "missed");
      c.close();
    });

    test("backups: put (replace), remove, oldest first, by set", async () => {
      const { catalog: c } = await make();
      c.putBackup(
        backup("D_2026_01_02_04_00_00", {
          startedAt: "2026-01-02T04:00:00.000Z",
          mode: "incremental",
          parent: "D_2026_01_01_04_00_00",
        }),
      );
      c.putBackup(backup("D_2026_01_01_04_00_00"));
      c.putBackup(backup("V_2026_01_01_04_00_00", { set: "video", destination: "nas" }));
      c.putBackup(backup("D_2026_01_01_04_00_00", { files: 4 }));
      assert.deepEqual(
        c.backups("data").map((b) => b.name),
        ["D_2026_01_01_04_00_00", "D_2026_01_02_04_00_00"],
      );
      assert.equal(c.backups("data")[0]?.files, 4);
      assert.equal(c.backups("data")[1]?.parent, "D_2026_01_01_04_00_00");
      assert.equal(c.backups().length, 3);
      // A record names where the backup is by destination, never by a local path.
      assert.equal(c.backups("video")[0]?.destination, "nas");
      assert.equal("path" in (c.backups("video")[0] ?? {}), false);
      c.removeBackup("data", "D_2026_01_01_04_00_00");
      c.removeBackup("data", "nope");
      assert.deepEqual(
        c.backups("data").map((b) => b.name),
        ["D_2026_01_02_04_00_00"],
      );
      assert.deepEqual(
        c.backups("data")[0],
        backup("D_2026_01_02_04_00_00", {
          startedAt: "2026-01-02T04:00:00.000Z",
          mode: "incremental",
          parent: "D_2026_01_01_04_00_00",
        }),
      );
      c.close();
    });

    test("a backup is known by destination and name: a copy on another destination is its own record", async () => {
      const { catalog: c } = await make();
      c.putBackup(backup("D_2026_01_01_04_00_00"));
      c.putBackup(backup("D_2026_01_01_04_00_00", { destination: "nas", diskBytes: 999 }));
      assert.deepEqual(
        c.backups("data").map((b) => [b.name, b.destination, b.diskBytes]),
        [
          ["D_2026_01_01_04_00_00", "folder", 420],
          ["D_2026_01_01_04_00_00", "nas", 999],
        ],
      );
      // Without a destination, removing means the set's own folder.
      c.removeBackup("data", "D_2026_01_01_04_00_00");
      assert.deepEqual(
        c.backups("data").map((b) => b.destination),
        ["nas"],
      );
      c.removeBackup("data", "D_2026_01_01_04_00_00", "nas");
      assert.deepEqual(c.backups("data"), []);
      c.close();
    });

    test("the last copy of each set to each destination is kept, a later one replacing it", async () => {
      const { catalog: c } = await make();
      const failed = {
        set: "data",
        destination: "nas",
        at: "2026-01-01T04:05:00.000Z",
        ok: false,
        copied: 0,
        newest: null,
        error: "cannot reach //fs/backups",
        errorCode: "UNREACHABLE",
        errorHint: "check the server",
      };
      c.putCopy(failed);
      c.putCopy({
        ...failed,
        destination: "offsite",
        ok: true,
        error: null,
        errorCode: null,
        errorHint: null,
      });
      c.putCopy({ ...failed, set: "video" });
      assert.deepEqual(c.copies("data"), [
        failed,
        { ...failed, destination: "offsite", ok: true, error: null, errorCode: null, errorHint: null },
      ]);
      const level = {
        ...failed,
        at: "2026-01-02T04:05:00.000Z",
        ok: true,
        copied: 2,
        newest: "D_2026_01_02_04_00_00",
      };
      c.putCopy({ ...level, error: null, errorCode: null, errorHint: null });
      assert.equal(c.copies("data")[0]?.ok, true);
      assert.equal(c.copies("data")[0]?.newest, "D_2026_01_02_04_00_00");
      assert.equal(c.copies().length, 3);
      c.close();
    });

    test("drills keep their evidence: what, from where, when, how long, every check; newest first, filtered", async () => {
      const { catalog: c } = await make();
      const proven = {
        set: "data",
        destination: "local",
        backup: "D_2026_01_01_04_00_00",
        pick: "newest" as const,
        trigger: "schedule" as const,
        startedAt: "2026-01-01T06:00:00.000Z",
        finishedAt: "2026-01-01T06:00:09.000Z",
        restoreMs: 7250,
        files: 4,
        bytes: 8192,
        ok: true,
        checks: [
          { name: "restore", ok: true, detail: "4 files, every sha256 matched" },
          { name: "sqlite cardholders.db", ok: true, detail: "integrity_check: ok" },
        ],
        error: null,
        errorCode: null,
        errorHint: null,
      };
      const a = c.addDrill(proven);
      const b = c.addDrill({
        ...proven,
        destination: "vault",
        pick: "older",
        backup: "D_2025_12_31_04_00_00",
        ok: false,
        restoreMs: 900,
        checks: [{ name: "command", ok: false, detail: "exited with code 3" }],
        error: "the check command exited with code 3",
        errorCode: "DRILL_FAILED",
        errorHint: "fix the command",
      });
      c.addDrill({ ...proven, set: "video", restoreMs: null, backup: null, checks: [] });
      assert.ok(b > a);
      assert.deepEqual(c.drills({ set: "data", destination: "local" }), [{ ...proven, id: a }]);
      assert.deepEqual(
        c.drills({ set: "data" }).map((d) => [d.destination, d.ok, d.checks.length]),
        [
          ["vault", false, 1],
          ["local", true, 2],
        ],
      );
      assert.deepEqual(
        c.drills({ ok: true }).map((d) => d.set),
        ["video", "data"],
      );
      assert.equal(c.drills({ limit: 1 })[0]?.set, "video");
      assert.equal(c.drills({ set: "video" })[0]?.restoreMs, null);
      assert.equal(c.drills({ set: "data", ok: false })[0]?.errorCode, "DRILL_FAILED");
      c.close();
    });

    test("finishing an unknown run is an error, not a silent no-op", async () => {
      const { catalog: c } = await make();
      assert.throws(() => c.finishRun(42, { finishedAt: "2026-01-01T00:00:00.000Z", status: "ok" }));
      c.close();
    });
  });
}

contract("memory", async () => ({ catalog: memoryCatalog() }));
contract("sqlite", async () => {
  const d = await tempDir("bsched-catalog-");
  dirs.push(d);
  return { catalog: openSqliteCatalog(path.join(d, "state", "catalog.db")) };
});

describe("sqlite catalog specifics", () => {
  test("persists across reopen; schema version in user_version; WAL mode", async () => {
    const d = await tempDir("bsched-catalog-");
    dirs.push(d);
    const file = path.join(d, "catalog.db");
    const c = openSqliteCatalog(file);
    const id = c.startRun({
      set: "data",
      planned: "2026-01-01T04:00:00.000Z",
      trigger: "catch-up",
      startedAt: "2026-01-01T05:00:00.000Z",
      slots: 2,
    });
    c.putBackup(backup("D_2026_01_01_04_00_00"));
    c.close();
    const again = openSqliteCatalog(file);
    assert.equal(again.getRun(id)?.trigger, "catch-up");
    assert.equal(again.getRun(id)?.slots, 2);
    assert.equal(again.lastPlanned("data"), "2026-01-01T04:00:00.000Z");
    assert.equal(again.backups().length, 1);
    again.close();
    const raw = new DatabaseSync(file);
    assert.equal(
      (raw.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      SCHEMA_VERSION,
    );
    assert.equal((raw.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode, "wal");
    raw.close();
  });

  test("a catalog written by the previous bsched (schema 2, fixture) opens as the current version with every row kept", async () => {
    // test/fixtures/catalog/catalog-v2.db was made by the bsched before schema 3: two runs (one
    // ok, one failed with only a message) and one backup recorded with its local path.
    const d = await tempDir("bsched-catalog-");
    dirs.push(d);
    const file = path.join(d, "catalog.db");
    await fs.copyFile(new URL("./fixtures/catalog/catalog-v2.db", import.meta.url), file);
    const c = openSqliteCatalog(file);
    assert.deepEqual(
      c.runs().map((r) => [r.status, r.backup, r.error, r.errorCode, r.errorHint]),
      [
        ["failed", null, "source folder missing: /srv/app/Data", null, null],
        ["ok", "D_2026_01_01_04_00_01", null, null, null],
      ],
    );
    assert.equal(c.lastPlanned("data"), "2026-01-01T04:00:00.000Z");
    assert.deepEqual(c.backups(), [
      backup("D_2026_01_01_04_00_01", {
        startedAt: "2026-01-01T04:00:01.000Z",
        finishedAt: "2026-01-01T04:02:00.000Z",
        diskBytes: 1420,
      }),
    ]);
    // The migrated file takes the new columns at once.
    const id = c.startRun({ set: "data", planned: null, trigger: "manual", startedAt: null });
    c.finishRun(id, {
      finishedAt: "2026-01-03T00:00:00.000Z",
      status: "failed",
      error: "x",
      errorCode: "DISK_FULL",
      errorHint: "free space",
    });
    c.close();
    const raw = new DatabaseSync(file);
    assert.equal(
      (raw.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      SCHEMA_VERSION,
    );
    const columns = (raw.prepare("PRAGMA table_info(backups)").all() as { name: string }[]).map(
      (r) => r.name,
    );
    assert.ok(columns.includes("destination") && !columns.includes("path"), columns.join(","));
    raw.close();
    const again = openSqliteCatalog(file);
    assert.equal(again.getRun(id)?.errorCode, "DISK_FULL");
    assert.equal(again.runs().length, 3);
    again.close();
  });

  test("a catalog of schema 1 with backups migrates to the current version in one step", async () => {
    const d = await tempDir("bsched-catalog-");
    dirs.push(d);
    const file = path.join(d, "catalog.db");
    const raw = new DatabaseSync(file);
    // The version-1 tables as bsched created them (src/catalog/sqlite/sqlite-catalog.ts SCHEMA_V1).
    raw.exec(`
${CATALOG_V1_TABLES}
INSERT INTO backups VALUES ('data', 'D_2026_01_01_04_00_00', '/b/D_2026_01_01_04_00_00', 'separate', 'full', NULL,
  '2026-01-01T04:00:00.000Z', '2026-01-01T04:01:00.000Z', 3, 300, 300, 0);
PRAGMA user_version = 1;
`);
    raw.close();
    const c = openSqliteCatalog(file);
    assert.deepEqual(c.backups(), [backup("D_2026_01_01_04_00_00", { diskBytes: null })]);
    c.close();
  });

  test("a catalog from a newer bsched is refused with a clear message", async () => {
    const d = await tempDir("bsched-catalog-");
    dirs.push(d);
    const file = path.join(d, "catalog.db");
    const raw = new DatabaseSync(file);
    raw.exec("PRAGMA user_version = 99");
    raw.close();
    // The message names the version and the hint the fix; each regex can fail on its own.
    assert.throws(
      () => openSqliteCatalog(file),
      (e: Error & { hint?: string }) =>
        /schema version 99/.test(e.message) && /catalog rebuild/.test(e.hint ?? ""),
    );
  });

  test("a damaged file is refused with a hint to rebuild", async () => {
    const d = await tempDir("bsched-catalog-");
    dirs.push(d);
    const file = path.join(d, "catalog.db");
    await fs.writeFile(file, "this is not a database, just some bytes that are long enough ".repeat(100));
    assert.throws(
      () => openSqliteCatalog(file),
      (e: Error & { hint?: string }) =>
        /cannot open the catalog/.test(e.message) && /catalog rebuild/.test(e.hint ?? ""),
    );
  });
});
