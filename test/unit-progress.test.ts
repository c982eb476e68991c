import assert from "node:assert/strict";
import { test } from "node:test";
import { formatBytes } from "../src/cli/output.ts";
import { progressLine } from "../src/cli/progress.ts";

test("progressLine shows files, bytes, percent, rate and ETA", () => {
  const line = progressLine(
    { phase: "copy", files: 1500, bytes: 50_000_000, totalFiles: 20_000, totalBytes: 200_000_000 },
    10,
  );
  assert.equal(line, "copy: 1,500/20,000 files  50.0 MB/200 MB (25%)  5.00 MB/s  ETA 0:30");
});

test("progressLine: scan phase, unknown rate, long ETA, nothing to copy", () => {
  assert.equal(
    progressLine({ phase: "scan", files: 12345, bytes: 0, totalFiles: 0, totalBytes: 0 }, 1),
    "scanning: 12,345 entries",
  );
  assert.match(
    progressLine({ phase: "restore", files: 0, bytes: 0, totalFiles: 10, totalBytes: 100 }, 0),
    /ETA --:--$/,
  );
  assert.match(
    progressLine(
      { phase: "verify", files: 1, bytes: 1_000_000, totalFiles: 2, totalBytes: 8_000_000_000 },
      1,
    ),
    /ETA 2:13:19$/,
  );
  assert.match(
    progressLine({ phase: "copy", files: 0, bytes: 0, totalFiles: 0, totalBytes: 0 }, 1),
    /\(100%\)/,
  );
});

test("formatBytes", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1000), "1.00 KB");
  assert.equal(formatBytes(1_073_741_824), "1.07 GB");
});
