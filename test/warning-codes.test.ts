import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { WARNING_CODES } from "../src/core/types.ts";

const README = new URL("../README.md", import.meta.url);

// WarningCode is the one list of codes a backup's warnings carry (the type checker holds every
// maker of a warning to it); the README's list must name exactly those.
test("warning codes: the README lists every code bsched makes, and no other", async () => {
  const text = await readFile(README, "utf8");
  const start = text.indexOf("Warnings (exit 3) carry codes too:");
  assert.ok(start >= 0, "the README's list of warning codes");
  const paragraph = text.slice(start, text.indexOf("\n\n", start));
  const listed = [...paragraph.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]);
  // SAME_FILESYSTEM is advice, not a warning of exit 3: the README explains it just above the list.
  const advice = text.slice(0, start);
  assert.match(advice, /`SAME_FILESYSTEM` is advice/);
  assert.deepEqual([...listed].sort(), WARNING_CODES.filter((c) => c !== "SAME_FILESYSTEM").sort());
});
