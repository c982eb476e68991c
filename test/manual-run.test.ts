import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { makeServer } from "./helpers/server.ts";

test("a manual backup is recorded in the catalog and followed by the keep policy", async () => {
  const s = await makeServer({ prefix: "bsched-manual-", mode: "full", setKeys: ["keep: { last: 2 }"] });
  await fs.writeFile(path.join(s.data, "a.db"), "x");
  const made: string[] = [];
  for (let i = 0; i < 3; i++) {
    await fs.writeFile(path.join(s.data, "a.db"), `version ${i}`);
    made.push((await s.backup()).name);
  }
  const list = JSON.parse((await s.cli(["list", "--json"])).stdout).map((b: { name: string }) => b.name);
  assert.deepEqual(list, made.slice(1), "the oldest full is pruned after the third backup");

  const h = await s.cli(["history", "data", "--json"]);
  assert.equal(h.code, 0, h.stderr);
  const runs = JSON.parse(h.stdout) as { trigger: string; status: string; backup: string }[];
  const manual = runs.filter((r) => r.trigger === "manual");
  assert.equal(manual.length, 3);
  assert.ok(manual.every((r) => r.status === "ok"));
  assert.deepEqual(manual.map((r) => r.backup).sort(), [...made].sort());
});

test("a failed manual backup is recorded as failed", async () => {
  const s = await makeServer({ prefix: "bsched-manual-fail-" });
  await fs.rm(s.data, { recursive: true });
  const r = await s.cli(["backup", "data"]);
  assert.equal(r.code, 1);
  const h = JSON.parse((await s.cli(["history", "data", "--json"])).stdout) as {
    status: string;
    error: string;
  }[];
  assert.equal(h[0]?.status, "failed");
  assert.match(h[0]?.error ?? "", /source folder/);
});
