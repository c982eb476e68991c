import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  DAEMON_LOCK,
  DAEMON_SOCKET,
  isOwnFileName,
  isRestoreStagingOf,
  isRunLockName,
  isSetLockName,
  parseTempName,
  RESTORED_MARKER,
  RESTORED_MARKER_TMP,
  restoreStagingName,
  runLockName,
  SET_LOCK_NAME,
  staleLockName,
  tempName,
} from "../src/platform/names.ts";

// These names are on disk (leftover sweeps, folder scans, the .sh script): they must not change.
test("names: bsched's own file names are the ones on disk", () => {
  assert.equal(SET_LOCK_NAME, ".bsched-lock");
  assert.equal(RESTORED_MARKER, ".bsched-restored");
  assert.equal(RESTORED_MARKER_TMP, ".bsched-restored.tmp");
  assert.equal(DAEMON_LOCK, "daemon.lock");
  assert.equal(DAEMON_SOCKET, "daemon.sock");
  assert.equal(runLockName("data"), ".bsched-data.lock");
  assert.match(tempName("D_2026_01_02_03_04_05"), /^\.D_2026_01_02_03_04_05\.tmp-\d+-[0-9a-f]{8}$/);
  assert.match(restoreStagingName("out"), /^\.out\.bsched-restore-\d+-[0-9a-f]{8}$/);
  assert.match(staleLockName("/x/.bsched-lock"), /^\/x\/\.bsched-lock\.stale-[0-9a-f]{8}$/);
});

test("names: each predicate recognizes what its maker makes, and nothing else", () => {
  const t = tempName("D_2026_01_02_03_04_05_2");
  assert.deepEqual(parseTempName(t), { base: "D_2026_01_02_03_04_05_2", pid: process.pid });
  assert.deepEqual(parseTempName(".a.b.tmp-12-ff"), { base: "a.b", pid: 12 });
  for (const n of [
    "D_2026_01_02_03_04_05",
    ".x.tmp-",
    ".x.tmp-12",
    "x.tmp-1-ab",
    ".x.tmp-1-AB",
    "..tmp-1-ab",
  ]) {
    assert.equal(parseTempName(n), undefined, n);
  }

  assert.ok(isRunLockName(runLockName("db-2")));
  for (const n of [".bsched-lock", ".bsched-.lock", "bsched-data.lock", ".bsched-data.lock.stale-ab"]) {
    assert.equal(isRunLockName(n), false, n);
  }

  assert.ok(isSetLockName(SET_LOCK_NAME));
  assert.ok(isSetLockName(staleLockName(SET_LOCK_NAME)));
  assert.equal(isSetLockName(".bsched-lockx"), false);

  for (const n of [SET_LOCK_NAME, RESTORED_MARKER, RESTORED_MARKER_TMP, staleLockName(SET_LOCK_NAME)]) {
    assert.ok(isOwnFileName(n), n);
  }
  for (const n of [".bsched-restoredx", "bsched-restored", "data.db", ".bsched-data.lock"]) {
    assert.equal(isOwnFileName(n), false, n);
  }

  assert.ok(isRestoreStagingOf(restoreStagingName("out"), "out"));
  assert.equal(isRestoreStagingOf(restoreStagingName("out"), "ou"), false);
  assert.equal(isRestoreStagingOf(restoreStagingName("out2"), "out"), false);
});

test("names: no other source file spells one of bsched's own file names (made only in names.ts)", async () => {
  const src = fileURLToPath(new URL("../src/", import.meta.url));
  // The compressed format's own names (the .sh's staging folder, its manifest member) are made in
  // src/format/compressed/ (docs/design.md "Names bsched gives its own files").
  const exempt = (rel: string) => rel === "platform/names.ts" || rel.startsWith("format/compressed/");
  const spelled = /\\?\.(tmp|deleting|stale)-|\.bsched-(lock|restore)/;
  const found: string[] = [];
  for (const rel of (await fs.readdir(src, { recursive: true })).map(String).sort()) {
    if (!rel.endsWith(".ts") || exempt(rel)) continue;
    const lines = (await fs.readFile(path.join(src, rel), "utf8")).split("\n");
    lines.forEach((line, i) => {
      const code = line.trim();
      if (code.startsWith("*") || code.startsWith("//") || code.startsWith("/*")) return; // prose
      if (spelled.test(code)) found.push(`src/${rel}:${i + 1}: ${code}`);
    });
  }
  assert.deepEqual(found, []);
});
