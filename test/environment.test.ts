import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** Every `BSCHED_*` variable a file of src/ reads from process.env, with the files reading it. */
async function variablesRead(): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  const files = (await readdir(path.join(ROOT, "src"), { recursive: true })).filter((f) => f.endsWith(".ts"));
  for (const f of files) {
    const text = await readFile(path.join(ROOT, "src", f), "utf8");
    const names = [
      ...[...text.matchAll(/process\.env\.(BSCHED_[A-Z_]+)/g)].map((m) => m[1] ?? ""),
      // Read through a parameter defaulting to process.env (findConfigFile's `env`).
      ...(/=\s*process\.env\b/.test(text)
        ? [...text.matchAll(/\benv\.(BSCHED_[A-Z_]+)/g)].map((m) => m[1] ?? "")
        : []),
    ];
    for (const n of names) found.set(n, [...(found.get(n) ?? []), `src/${f}`]);
  }
  return found;
}

// Item 6 of issue 10: every variable read inside src/ is a documented configuration variable or a
// documented test hook, listed in docs/design.md "Environment variables" with the file that reads it.
test("environment: docs/design.md lists every variable src/ reads, and only those", async () => {
  const design = await readFile(path.join(ROOT, "docs", "design.md"), "utf8");
  const start = design.indexOf("## Environment variables");
  assert.ok(start >= 0, 'docs/design.md has an "Environment variables" section');
  const section = design.slice(start, design.indexOf("\n## ", start + 1));
  const rows = new Map(
    [...section.matchAll(/^\| `(BSCHED_[A-Z_]+)` \| ([^|]+) \| `([^`]+)` \|/gm)].map((m) => [
      m[1] ?? "",
      { kind: m[2] ?? "", file: m[3] ?? "" },
    ]),
  );
  const read = await variablesRead();
  assert.deepEqual([...rows.keys()].sort(), [...read.keys()].sort());
  for (const [name, files] of read) {
    const row = rows.get(name);
    assert.ok(row && files.includes(row.file), `${name}: read in ${files.join(", ")}`);
    assert.match(row.kind, /^(configuration|test hook)\b/, name);
  }
  assert.equal(
    read.has("BSCHED_TEST_MANIFEST_RESERVE"),
    false,
    "replaced by runBackup's compressedManifestReserve",
  );
  assert.equal(
    read.has("BSCHED_TEST_PAUSE_AFTER_FILES"),
    false,
    "replaced by the child script test/helpers/paused-backup.ts (a progress sink that blocks)",
  );
  assert.equal(
    read.has("BSCHED_TEST_CLOCK_START"),
    false,
    "replaced by test/helpers/daemon-child.ts, which injects the daemon service's clock",
  );
});
