import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { utimesArg } from "../src/platform/times.ts";
import { tempDir } from "./helpers/cli.ts";

test("utimesArg sets mtimes exact to the microsecond, before 1970, at 0 and today", async () => {
  const dir = await tempDir();
  const f = path.join(dir, "f");
  await fs.writeFile(f, "");
  const cases = [
    "0",
    "999",
    "1000",
    "1700000000123456789",
    "1795679975826999000",
    "-1000",
    "-1000000000",
    "-1000001000",
    "-304707110876999000",
    "-999999000",
  ];
  for (const ns of cases) {
    const t = utimesArg(ns);
    await fs.utimes(f, t, t);
    const st = await fs.stat(f, { bigint: true });
    assert.equal(st.mtimeNs / 1000n, BigInt(ns) / 1000n, `mtime ${ns} ns`);
  }
  await fs.rm(dir, { recursive: true, force: true });
});
