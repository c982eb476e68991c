import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { describeSchedule, nextRun, nextRuns, slotsBetween } from "../src/schedule/schedule.ts";
import { runCli, tempDir } from "./helpers/cli.ts";

test("frequency every: whole multiples of the interval since the epoch, in any time zone", () => {
  const spec = { frequency: "every" as const, time: "04:00", every: 30 };
  const at = new Date("2026-03-29T00:59:50Z"); // Europe/Paris springs forward at 01:00 UTC
  for (const tz of ["UTC", "Europe/Paris", "Asia/Kolkata"]) {
    assert.deepEqual(
      nextRuns(spec, at, tz, 3).map((d) => d.toISOString()),
      ["2026-03-29T01:00:00.000Z", "2026-03-29T01:00:30.000Z", "2026-03-29T01:01:00.000Z"],
    );
  }
  // Strictly after: a slot instant itself is not its own next run.
  assert.equal(
    nextRun(spec, new Date("2026-03-29T01:00:00Z"), "UTC")?.toISOString(),
    "2026-03-29T01:00:30.000Z",
  );
  // A long downtime counts its slots without running each.
  const down = slotsBetween(spec, new Date("2026-01-01T00:00:00Z"), new Date("2026-01-01T01:00:00Z"), "UTC");
  assert.equal(down.count, 120);
  assert.equal(down.newest?.toISOString(), "2026-01-01T01:00:00.000Z");
  assert.equal(describeSchedule(spec), "every 30 s");
});

test("frequency hourly: at the minutes of `time`, every hour, through a DST change", () => {
  const spec = { frequency: "hourly" as const, time: "04:15" };
  const runs = nextRuns(spec, new Date("2026-10-25T00:00:00Z"), "Europe/Paris", 4).map((d) =>
    d.toISOString(),
  );
  // 25 October 2026: Paris falls back at 01:00 UTC; every hour of UTC still gets its :15 run once.
  assert.deepEqual(runs, [
    "2026-10-25T00:15:00.000Z",
    "2026-10-25T01:15:00.000Z",
    "2026-10-25T02:15:00.000Z",
    "2026-10-25T03:15:00.000Z",
  ]);
  assert.equal(describeSchedule(spec), "hourly at :15");
});

test("config: every needs frequency every, a unit, and at least 10 s", async () => {
  const dir = await tempDir("bsched-every-");
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  const cfg = path.join(dir, "bsched.yaml");
  const write = (setLines: string) =>
    fs.writeFile(
      cfg,
      `server:\n  root: srv\n  timezone: UTC\nsets:\n  data:\n    letter: D\n    source: Data\n${setLines}`,
    );
  const cases: [string, RegExp][] = [
    ["    frequency: every\n", /sets\.data\.every: missing; allowed: with frequency every/],
    ["    frequency: every\n    every: 30\n", /sets\.data\.every/],
    ["    frequency: every\n    every: 5s\n", /sets\.data\.every: got "5s"; allowed: at least 10s/],
    [
      "    frequency: daily\n    every: 1h\n",
      /sets\.data\.every: got "1h"; allowed: only with frequency every/,
    ],
  ];
  for (const [lines, message] of cases) {
    await write(lines);
    const r = await runCli(["next", "--config", cfg]);
    assert.equal(r.code, 2, lines);
    assert.match(r.stderr, message);
  }
  await write("    frequency: every\n    every: 2m\n");
  const r = await runCli([
    "next",
    "data",
    "--from",
    "2026-01-01T00:00:10Z",
    "--count",
    "2",
    "--json",
    "--config",
    cfg,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    JSON.parse(r.stdout).map((x: { at: string }) => x.at),
    ["2026-01-01T00:02:00.000Z", "2026-01-01T00:04:00.000Z"],
  );
});
