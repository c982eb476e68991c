import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { runCli, tempDir } from "./helpers/cli.ts";

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

async function setup() {
  const dir = await tempDir("bsched-next-");
  dirs.push(dir);
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: Europe/Paris
sets:
  data:
    letter: D
    source: Data
    frequency: daily
    time: "02:30"
  archive:
    letter: A
    source: Archive
    frequency: monthly
    day: 31
  inout:
    letter: T
    source: Time
    frequency: now
  video:
    letter: V
    source: Video
    automatic: false
`,
  );
  return (...args: string[]) => runCli([...args, "--config", config], { cwd: dir });
}

test("next --json: an array of {at, mode} for one set, an object of the automatic sets otherwise", async () => {
  const cli = await setup();
  let r = await cli("next", "data", "--from", "2026-03-28T00:00:00Z", "--count", "3", "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    { at: "2026-03-28T01:30:00.000Z", mode: "full" },
    { at: "2026-03-29T01:00:00.000Z", mode: "full" }, // 02:30 is in the DST gap: 03:00 CEST
    { at: "2026-03-30T00:30:00.000Z", mode: "full" },
  ]);
  r = await cli("next", "--from", "2026-01-31T12:00:00+01:00", "--count", "2", "--json");
  assert.equal(r.code, 0, r.stderr);
  const at = (xs: { at: string; mode: string }[]) => xs.map((x) => x.at);
  const all = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(all), ["data", "archive"]);
  assert.deepEqual(at(all.data), ["2026-02-01T01:30:00.000Z", "2026-02-02T01:30:00.000Z"]);
  assert.deepEqual(at(all.archive), ["2026-02-28T03:00:00.000Z", "2026-03-31T02:00:00.000Z"]);
  r = await cli("next", "inout", "--json");
  assert.deepEqual(JSON.parse(r.stdout), [], "frequency now: never scheduled");
  r = await cli("next", "--from", "2026-03-28T00:00:00Z", "--count", "1");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /data: daily at 02:30\n {2}2026-03-28 02:30 /);
});

test("next refuses a time without an offset, a bad count, an unknown set", async () => {
  const cli = await setup();
  let r = await cli("next", "--from", "2026-03-28T00:00:00");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not an ISO-8601 instant/);
  r = await cli("next", "--count", "0");
  assert.equal(r.code, 2);
  r = await cli("next", "nope");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown set "nope"/);
});
