import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { makeServer } from "./helpers/server.ts";

// The unreadable-file cases run for every backup type in format-contract.test.ts.

interface Summary {
  files: number;
  warnings: { path: string; code: string; message: string }[];
}

test("a file name that is not valid UTF-8 is named as such (not as vanished), exit 3, the rest backed up", async () => {
  const s = await makeServer();
  await fs.writeFile(path.join(s.data, "fine"), "ok");
  await fs.writeFile(Buffer.from(`${s.data}/bad\xff name`, "latin1"), "x");
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /not valid UTF-8.*\[UNSUPPORTED_NAME\]/);
  const sum = JSON.parse(r.stdout) as Summary;
  assert.equal(sum.files, 1);
  assert.deepEqual(
    sum.warnings.map((w) => w.code),
    ["UNSUPPORTED_NAME"],
  );
  await fs.rm(s.dir, { recursive: true, force: true });
});
