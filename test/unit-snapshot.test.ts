import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BschedError } from "../src/core/errors.ts";
import type { Entry, Manifest } from "../src/core/types.ts";
import { isRacy, isUnchanged, planBackup } from "../src/snapshot/diff.ts";
import { backupBaseName, isBackupName, uniqueName } from "../src/snapshot/naming.ts";
import { checkRelativePath, comparePaths, parentOf } from "../src/snapshot/paths.ts";
import { applyChanges, changesSince, firstNeeded, stateOf } from "../src/snapshot/state.ts";

const base = { mode: 0o644, mtimeNs: "1700000000000000000", uid: 0, gid: 0 };
const file = (path: string, extra: Partial<Entry> = {}): Entry => ({
  ...base,
  path,
  kind: "file",
  size: 10,
  ino: "100",
  ctimeNs: "1700000000000000001",
  ...extra,
});
const stored = (e: Entry, from = "D_2026_01_01_04_00_00"): Entry => ({ ...e, sha256: "a".repeat(64), from });
const dir = (path: string): Entry => ({ ...base, path, kind: "dir", mode: 0o755 });
const link = (path: string, target: string): Entry => ({ ...base, path, kind: "symlink", target });

describe("planBackup", () => {
  test("a full (no parent) stores every file and deletes nothing", () => {
    const p = planBackup([dir("d"), file("d/f"), link("l", "d/f")], undefined);
    assert.deepEqual(
      p.toStore.map((e) => e.path),
      ["d/f"],
    );
    assert.deepEqual(p.deletions, []);
    assert.deepEqual(
      p.newDirs.map((e) => e.path),
      ["d"],
    );
    assert.deepEqual(
      p.newSymlinks.map((e) => e.path),
      ["l"],
    );
  });

  test("an unchanged file keeps the parent's sha256 and from; any key moving makes it changed", () => {
    const parent = [stored(file("f"))];
    const same = planBackup([file("f")], parent);
    assert.deepEqual(same.toStore, []);
    assert.equal(same.entries[0]?.from, "D_2026_01_01_04_00_00");
    assert.equal(same.entries[0]?.sha256, "a".repeat(64));
    for (const change of [
      { size: 11 },
      { mtimeNs: "1700000000000000002" },
      { ctimeNs: "1700000000000000009" }, // same size and mtime: a `touch -r` after writing
      { ino: "101" }, // replaced by rename
    ]) {
      const p = planBackup([file("f", change)], parent);
      assert.deepEqual(
        p.toStore.map((e) => e.path),
        ["f"],
        JSON.stringify(change),
      );
      assert.equal(p.entries[0]?.sha256, undefined);
    }
    assert.equal(isUnchanged(file("f"), undefined), false);
    assert.equal(isUnchanged(file("f"), file("f")), false, "a parent entry without content is never reused");
  });

  test("a record whose ctime is within a tick of the parent's run is racily clean: read again", () => {
    const born = 1700000000_500_000_000n;
    const at = (ctimeNs: bigint) => stored(file("f", { ctimeNs: String(ctimeNs) }));
    const plan = (rec: Entry) =>
      planBackup([file("f", { ctimeNs: rec.ctimeNs })], [rec], born).toStore.length;
    assert.equal(plan(at(born - 1_000_000_000n)), 0, "well before the run: trusted");
    assert.equal(plan(at(born - 10_000_000n)), 1, "10 ms before the run: racy");
    assert.equal(plan(at(born + 5n)), 1, "during the run: racy");
    assert.equal(plan(at(1700000000_000_000_000n - 1_000_000_000n)), 1, "whole-second ctimes get a 2 s tick");
    assert.equal(plan(at(1700000000_000_000_000n - 3_000_000_000n)), 0);
    assert.equal(
      planBackup([file("f")], [stored(file("f"))], undefined).toStore.length,
      0,
      "no birth time: no rule",
    );
    assert.equal(isRacy(undefined, born), false);
  });

  test("deletions: gone paths and paths that changed kind; new and retargeted links; new folders", () => {
    const parent = [
      dir("a"),
      stored(file("a/x")),
      stored(file("gone")),
      stored(file("was-file")),
      dir("was-dir"),
      link("l1", "t1"),
      link("l2", "t2"),
    ];
    const now = [
      dir("a"),
      file("a/x"),
      dir("b"),
      dir("was-file"),
      file("was-dir"),
      link("l1", "t1"),
      link("l2", "other"),
    ];
    const p = planBackup(now, parent);
    assert.deepEqual(
      p.deletions,
      ["gone", "l2", "was-dir", "was-file"],
      "a retargeted link is removed first",
    );
    assert.deepEqual(
      p.toStore.map((e) => e.path),
      ["was-dir"],
    );
    assert.deepEqual(
      p.newDirs.map((e) => e.path),
      ["b", "was-file"],
    );
    assert.deepEqual(
      p.newSymlinks.map((e) => e.path),
      ["l2"],
    );
    assert.equal(p.entries.length, now.length);
    const chmodded = planBackup([{ ...dir("a"), mode: 0o700 }], [dir("a")]);
    assert.deepEqual(
      chmodded.newDirs.map((e) => e.path),
      ["a"],
      "a folder whose mode changed is carried",
    );
  });
});

describe("state from a chain (format 3)", () => {
  const F = "D_2026_01_01_04_00_00";
  const I1 = "D_2026_01_02_04_00_00";
  const I2 = "D_2026_01_03_04_00_00";
  const header = (name: string, holds: "state" | "changes") =>
    ({ name, holds, mode: holds === "state" ? "full" : "incremental" }) as unknown as Manifest;
  const m = (
    name: string,
    holds: "state" | "changes",
    entries: Entry[],
    deletions: string[] = [],
  ): Manifest => ({
    ...header(name, holds),
    entries,
    deletions,
  });
  const full = [dir("a"), stored(file("a/x")), stored(file("b")), link("l", "b"), stored(file("z"))];

  test("an incremental records only the entries whose record differs; the chain gives the state back", () => {
    const parent = new Map(full.map((e) => [e.path, e]));
    // Carried records (new objects with the same keys) are not changes; any key moving is.
    const next = [
      dir("a"),
      { ...stored(file("a/x")) },
      stored(file("a/y"), I1),
      { ...stored(file("b")), mtimeNs: "1" },
      link("l", "z"),
    ];
    const changes = changesSince(parent, next);
    assert.deepEqual(
      changes.map((e) => e.path),
      ["a/y", "b", "l"],
    );
    const s1 = stateOf([m(F, "state", full), m(I1, "changes", changes, ["l", "z"])]);
    assert.deepEqual(s1.entries, next);
    assert.equal(s1.name, I1);
    assert.equal(s1.holds, "state");
    // Nothing changed: no entry, and the state is the parent's.
    assert.deepEqual(changesSince(new Map(next.map((e) => [e.path, e])), next), []);
    assert.deepEqual(
      stateOf([m(F, "state", full), m(I1, "changes", changes, ["l", "z"]), m(I2, "changes", [])]).entries,
      next,
    );
  });

  test("kind changes and renames: deletions first, then the changes, sorted by path", () => {
    const changes = [stored(file("a"), I1), dir("c"), stored(file("c/x"), I1)];
    const state = applyChanges(full, { entries: changes, deletions: ["a", "a/x", "z"] });
    assert.deepEqual(
      state.map((e) => [e.path, e.kind]),
      [
        ["a", "file"],
        ["b", "file"],
        ["c", "dir"],
        ["c/x", "file"],
        ["l", "symlink"],
      ],
    );
    assert.equal(
      applyChanges(full, { entries: [], deletions: [] }),
      full,
      "an empty change list costs nothing",
    );
  });

  test("only the manifests from the newest whole state on are needed", () => {
    assert.equal(firstNeeded([header(F, "state"), header(I1, "changes"), header(I2, "changes")]), 0);
    // A version-2 incremental (no `holds`) is a whole state.
    const v2 = { name: I1, mode: "incremental" } as unknown as Manifest;
    assert.equal(firstNeeded([header(F, "state"), v2, header(I2, "changes")]), 1);
    assert.equal(firstNeeded([header(F, "state"), v2]), 1);
    assert.throws(() => stateOf([m(I1, "changes", [])]), { code: "CHAIN_BROKEN" });
  });
});

describe("naming", () => {
  test("the name is the start time in the configured time zone", () => {
    const t = new Date("2026-01-31T03:04:05.678Z");
    assert.equal(backupBaseName("D", t, "UTC"), "D_2026_01_31_03_04_05");
    assert.equal(backupBaseName("D", t, "Europe/Paris"), "D_2026_01_31_04_04_05");
    assert.equal(backupBaseName("A", t, "America/New_York"), "A_2026_01_30_22_04_05");
    assert.equal(backupBaseName("T", t, "Asia/Kolkata"), "T_2026_01_31_08_34_05");
    // Midnight is 00, never 24.
    assert.equal(
      backupBaseName("V", new Date("2026-07-01T22:00:00Z"), "Europe/Paris"),
      "V_2026_07_02_00_00_00",
    );
  });

  test("collisions get _2, _3 …", () => {
    const taken = new Set(["D_2026_01_31_04_00_00", "D_2026_01_31_04_00_00_2"]);
    assert.equal(
      uniqueName("D_2026_01_31_04_00_00", (n) => taken.has(n)),
      "D_2026_01_31_04_00_00_3",
    );
    assert.equal(
      uniqueName("D_2026_01_31_04_00_01", (n) => taken.has(n)),
      "D_2026_01_31_04_00_01",
    );
  });

  test("isBackupName accepts the contract's names and nothing else", () => {
    for (const ok of ["D_2026_01_31_04_00_00", "D_2026_01_31_04_00_00_2", "D_2026_01_31_04_00_00_17"])
      assert.equal(isBackupName(ok), true, ok);
    for (const bad of [
      "D_2026_01_31_04_00",
      "d_2026_01_31_04_00_00",
      "D_2026_01_31_04_00_00_1",
      "D_2026_01_31_04_00_00_0",
      "D_2026_01_31_04_00_00_02",
      "../D_2026_01_31_04_00_00",
      "D_2026_01_31_04_00_00/..",
      ".D_2026_01_31_04_00_00.tmp-1-ab",
    ])
      assert.equal(isBackupName(bad), false, bad);
    assert.equal(isBackupName("D_2026_01_31_04_00_00", "D"), true);
    assert.equal(isBackupName("D_2026_01_31_04_00_00", "A"), false);
  });
});

describe("paths", () => {
  test("safe relative paths pass, hostile ones are refused with UNSAFE_PATH", () => {
    for (const ok of ["a", "a/b", "é 漢字/x y", "-rf", "a\nb", "...", "..a", "a.."])
      assert.equal(checkRelativePath(ok, "m"), ok);
    for (const bad of [
      "",
      "/etc/passwd",
      "..",
      "../x",
      "a/../b",
      "a/..",
      ".",
      "./a",
      "a/./b",
      "a//b",
      "a/",
      "a\0b",
      7,
    ]) {
      assert.throws(
        () => checkRelativePath(bad, "m"),
        (e: unknown) => e instanceof BschedError && e.code === "UNSAFE_PATH",
        JSON.stringify(bad),
      );
    }
  });

  test("parentOf and comparePaths", () => {
    assert.equal(parentOf("a/b/c"), "a/b");
    assert.equal(parentOf("a"), undefined);
    // Code-unit order: "a/b" sorts before "a-b"? "/" is 0x2f, "-" is 0x2d: "a-b" first.
    assert.deepEqual(["a/b", "a-b", "B", "a", "é"].sort(comparePaths), ["B", "a", "a-b", "a/b", "é"]);
  });
});
