import assert from "node:assert/strict";
import { test } from "node:test";
import type { RunRecord } from "../src/catalog/catalog.ts";
import { parseConfig, type SetConfig } from "../src/config/load.ts";
import type { RawSet } from "../src/config/schema.ts";
import type { BackupMode, BackupType, Frequency, RunStatus } from "../src/core/types.ts";

// Compile-time checks (npx tsc --noEmit is their proof): the config's types come from the schema,
// so a key added to the schema reaches SetConfig, and the closed value sets are the schema's.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const everySchemaKeyInSetConfig: Equal<Exclude<keyof RawSet, keyof SetConfig>, never> = true;
const typeFromSchema: Equal<SetConfig["type"], BackupType> = true;
const modeFromSchema: Equal<SetConfig["mode"], BackupMode> = true;
const frequencyFromSchema: Equal<SetConfig["frequency"], Frequency> = true;
const keepFromSchema: Equal<SetConfig["keep"], RawSet["keep"]> = true;
const oneRunStatus: Equal<RunRecord["status"], RunStatus> = true;

test("config types: a parsed set carries the schema's keys with their defaults, and the resolved ones", () => {
  assert.ok(everySchemaKeyInSetConfig && typeFromSchema && modeFromSchema && frequencyFromSchema);
  assert.ok(keepFromSchema && oneRunStatus);
  const config = parseConfig(
    "server: { root: /srv }\nsets:\n  data: { letter: D, source: Data }\n",
    "/etc/bsched.yaml",
  );
  const set = config.sets.get("data");
  assert.ok(set);
  assert.equal(set.source, "/srv/Data");
  assert.equal(set.folder, "/srv/Backup");
  assert.equal(set.type, "separate");
  assert.equal(set.mode, "full");
  assert.equal(set.frequency, "weekly");
  assert.equal(set.day, "sunday");
  assert.equal(set.every, undefined);
  assert.equal(set.compression, "zstd");
});
