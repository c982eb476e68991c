import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { memoryCatalog } from "../src/catalog/memory/memory-catalog.ts";
import { reconcileSet } from "../src/catalog/reconcile.ts";
import { getSet, loadConfig } from "../src/config/load.ts";
import { BschedError } from "../src/core/errors.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { backupNow, recordFailedRun } from "../src/ops/backup-now.ts";
import { systemClock } from "../src/platform/clock.ts";
import { makeServer } from "./helpers/server.ts";

test("a failed manual backup is recorded with its code and hint; history shows them, --json too", async (t) => {
  const s = await makeServer({ prefix: "bsched-history-" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.rm(s.data, { recursive: true });
  const failed = await s.cli(["backup", "data", "--json"]);
  assert.equal(failed.code, 1, failed.stderr);
  const printed = JSON.parse(failed.stdout).error as { code: string; message: string; hint: string };
  assert.equal(printed.code, "SOURCE_MISSING");

  // The run keeps exactly what the command printed: message, code and hint.
  const h = await s.cli(["history", "--json"]);
  assert.equal(h.code, 0, h.stderr);
  const [run] = JSON.parse(h.stdout);
  assert.deepEqual(
    { status: run.status, error: run.error, errorCode: run.errorCode, errorHint: run.errorHint },
    { status: "failed", error: printed.message, errorCode: "SOURCE_MISSING", errorHint: printed.hint },
  );

  const text = await s.cli(["history"]);
  assert.equal(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split("\n");
  assert.match(lines[0] ?? "", /\bfailed\b.*\[SOURCE_MISSING\] /);
  assert.equal(lines[1], `    hint: ${printed.hint}`);

  // status shows the last run's code and hint in JSON as well.
  const st = JSON.parse((await s.cli(["status", "--json"])).stdout);
  assert.equal(st.sets[0].lastRun.errorCode, "SOURCE_MISSING");
  assert.equal(st.sets[0].lastRun.errorHint, printed.hint);

  // A successful run after it has no code or hint.
  await fs.mkdir(s.data);
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  await s.backup();
  const [ok] = JSON.parse((await s.cli(["history", "--json"])).stdout);
  assert.deepEqual([ok.status, ok.error, ok.errorCode, ok.errorHint], ["ok", null, null, null]);
});

test("recordFailedRun keeps a BschedError's code and hint, words an OS error, marks the unexpected INTERNAL", () => {
  const c = memoryCatalog();
  const now = new Date("2026-01-01T00:00:00.000Z");
  const run = () =>
    c.startRun({ set: "data", planned: null, trigger: "manual", startedAt: now.toISOString() });
  const cases: [unknown, string | null, RegExp | null][] = [
    [new BschedError("DISK_FULL", "no space", { hint: "free space" }), "DISK_FULL", /^free space$/],
    [
      Object.assign(new Error("EACCES: permission denied, open '/x/y'"), {
        code: "EACCES",
        errno: -13,
        syscall: "open",
        path: "/x/y",
      }),
      "PERMISSION_DENIED",
      /access to \/x/,
    ],
    [new Error("boom"), "INTERNAL", /unexpected/],
    ["only a message", null, null],
  ];
  for (const [error, code, hint] of cases) {
    const id = run();
    recordFailedRun(c, id, error, now);
    const r = c.getRun(id);
    assert.equal(r?.status, "failed");
    assert.equal(r?.errorCode, code, String(error));
    if (hint === null) assert.equal(r?.errorHint, null);
    else assert.match(r?.errorHint ?? "", hint);
    assert.ok((r?.error ?? "").length > 0);
  }
  c.close();
});

test("a catalog record names the destination the backup was written to, and a path is only computed from it", async (t) => {
  const s = await makeServer({ prefix: "bsched-history-dest-", mode: "full" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  const config = loadConfig(s.config);
  const set = getSet(config, "data");
  const catalog = memoryCatalog();
  const ctx = { config, clock: systemClock, catalog };
  // The set's own folder is `folder`; a destination given instead is recorded by its name.
  const own = await backupNow(ctx, { set, prune: false });
  const elsewhere = path.join(s.dir, "elsewhere");
  await fs.mkdir(elsewhere);
  const other = await backupNow(ctx, {
    set,
    prune: false,
    destination: new LocalDestination(elsewhere, { name: "usb" }),
  });
  assert.deepEqual(
    catalog.backups("data").map((b) => [b.name, b.destination]),
    [
      [own.summary.name, "folder"],
      [other.summary.name, "usb"],
    ],
  );
  for (const b of catalog.backups("data")) assert.equal("path" in b, false);
  // Repair from the set's folder records what is there under `folder`.
  const repaired = memoryCatalog();
  await reconcileSet(repaired, set);
  assert.deepEqual(
    repaired.backups("data").map((b) => [b.name, b.destination]),
    [[own.summary.name, "folder"]],
  );
  catalog.close();
  repaired.close();
});
