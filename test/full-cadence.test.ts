// Issue 9 item 3: an incremental set makes a full every `fullEvery` backups, so its chains stay
// bounded and `keep` can delete old ones; `next` and `status` show the cadence; a keep that
// the chains outgrow is warned about. Item 14: `daily` with a `day` is refused; init's comments.
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { parseConfig } from "../src/config/load.ts";
import { demoConfigText } from "../src/demo/seed.ts";
import { runCli, tempDir } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

/** A server root with one set `data` (incremental) whose set keys are `setLines`. */
async function server(setLines: string) {
  const dir = await tempDir("bsched-cadence-");
  dirs.push(dir);
  const data = path.join(dir, "srv/Data");
  await fs.mkdir(data, { recursive: true });
  const config = path.join(dir, "bsched.yaml");
  const write = (lines: string) =>
    fs.writeFile(
      config,
      `server:\n  root: srv\n  timezone: UTC\nsets:\n  data:\n    letter: D\n    source: Data\n    mode: incremental\n${lines}`,
    );
  await write(setLines);
  const cli = (...args: string[]) => runCli([...args, "--config", config], { cwd: dir });
  let n = 0;
  const backup = async (...args: string[]) => {
    await fs.writeFile(path.join(data, "f.txt"), `change ${++n}\n`);
    const r = await cli("backup", "data", "--json", ...args);
    assert.ok(r.code === 0 || r.code === 3, r.stderr);
    return {
      ...(JSON.parse(r.stdout) as { name: string; mode: string; parent: string | null }),
      stderr: r.stderr,
    };
  };
  return { dir, config, data, cli, backup, write };
}

test("fullEvery 4: nine backups are F I I I F I I I F, and keep {last: 2} then deletes whole old chains", async () => {
  const s = await server("    frequency: now\n    fullEvery: 4\n    keep: { last: 2 }\n");
  const made = [];
  for (let i = 0; i < 9; i++) made.push(await s.backup());
  assert.deepEqual(made.map((b) => (b.mode === "full" ? "F" : "I")).join(" "), "F I I I F I I I F");
  for (let i = 1; i < 9; i++) {
    assert.equal(made[i]?.parent, made[i]?.mode === "full" ? null : made[i - 1]?.name, `backup ${i + 1}`);
  }
  // The prune after each backup: the newest two are the 8th (needing the 5th to 7th) and the 9th.
  const l = await s.cli("list", "data", "--json");
  assert.equal(l.code, 0, l.stderr);
  assert.deepEqual(
    (JSON.parse(l.stdout) as { name: string }[]).map((b) => b.name),
    made.slice(4).map((b) => b.name),
  );
  // The kept chain still restores to the newest state.
  const to = path.join(s.dir, "restored");
  const r = await s.cli("restore", "data", "--to", to);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await fs.readFile(path.join(to, "f.txt"), "utf8"), "change 9\n");
});

test("an explicit --mode is done as asked; the set's own mode follows the cadence", async () => {
  const s = await server("    frequency: now\n    fullEvery: 2\n");
  const a = await s.backup();
  const b = await s.backup();
  const c = await s.backup("--mode", "incremental");
  const d = await s.backup();
  const e = await s.backup("--mode", "full");
  const f = await s.backup();
  assert.deepEqual(
    [a, b, c, d, e, f].map((x) => x.mode),
    ["full", "incremental", "incremental", "full", "full", "incremental"],
  );
  assert.equal(c.parent, b.name, "asked incremental: it extends the chain past fullEvery");
});

test("next says which upcoming runs are full; status shows the chain and when the next full is due", async () => {
  const s = await server('    frequency: daily\n    time: "04:00"\n    fullEvery: 3\n');
  const next = async () => {
    const r = await s.cli("next", "data", "--from", "2030-01-01T00:00:00Z", "--count", "4", "--json");
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { at: string; mode: string }[];
  };
  assert.deepEqual(await next(), [
    { at: "2030-01-01T04:00:00.000Z", mode: "full" },
    { at: "2030-01-02T04:00:00.000Z", mode: "incremental" },
    { at: "2030-01-03T04:00:00.000Z", mode: "incremental" },
    { at: "2030-01-04T04:00:00.000Z", mode: "full" },
  ]);
  await s.backup();
  await s.backup();
  assert.deepEqual(
    (await next()).map((x) => x.mode),
    ["incremental", "full", "incremental", "incremental"],
  );
  const all = await s.cli("next", "--from", "2030-01-01T00:00:00Z", "--count", "2", "--json");
  assert.deepEqual(JSON.parse(all.stdout), {
    data: [
      { at: "2030-01-01T04:00:00.000Z", mode: "incremental" },
      { at: "2030-01-02T04:00:00.000Z", mode: "full" },
    ],
  });
  const human = await s.cli("next", "--from", "2030-01-01T00:00:00Z", "--count", "2");
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /data: daily at 04:00; incremental, a full every 3 backups \(chain now 2\)/);
  assert.match(
    human.stdout,
    /\(2030-01-01T04:00:00\.000Z\) {2}incremental\n.*\(2030-01-02T04:00:00\.000Z\) {2}full\n/,
  );

  const st = await s.cli("status", "--json");
  assert.equal(st.code, 0, st.stderr);
  const set = (JSON.parse(st.stdout) as { sets: { mode: string; chain: unknown; nextRun: string }[] })
    .sets[0];
  assert.equal(set?.mode, "incremental");
  const { nextFullAt, ...chain } = (set?.chain ?? {}) as { nextFullAt: string };
  assert.deepEqual(chain, { length: 2, fullEvery: 3, nextFullIn: 2 });
  // The second scheduled run from now.
  assert.equal(Date.parse(nextFullAt) - Date.parse(set?.nextRun ?? ""), 86_400_000);
  const sh = await s.cli("status");
  assert.match(
    sh.stdout,
    /chain: {5}2 of 3 \(a full every 3\); next full: the 2nd backup from now, planned /,
  );
});

test("a keep the chains outgrow is warned about at load (the key named), never refused", async () => {
  const s = await server("    frequency: now\n    keep: { last: 2 }\n");
  let r = await s.cli("list", "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /bsched: warning: .*bsched\.yaml: sets\.data\.keep: \{ last: 2 \} covers less than one chain \(fullEvery 7, the default: 7 backups\).*holds up to 8 backups; set sets\.data\.fullEvery to 2 or less/,
  );
  // By time: keep 3 days of a daily set whose chains last 10 days.
  await s.write('    frequency: daily\n    time: "04:00"\n    fullEvery: 10\n    keep: { daily: 3 }\n');
  r = await s.cli("list", "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /sets\.data\.keep: \{ daily: 3 \} covers less than one chain \(fullEvery 10: 10 backups, 10 days\)/,
  );
  // Enough keep: silent. fullEvery on a full set: unused, said so.
  await s.write("    frequency: now\n    fullEvery: 3\n    keep: { last: 3 }\n");
  r = await s.cli("list", "--json");
  assert.equal(r.stderr, "");
  const full = await makeServer({ mode: "full", setKeys: ["fullEvery: 3"] });
  dirs.push(full.dir);
  r = await full.cli(["list", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /bsched: warning: .*sets\.data\.fullEvery: unused with mode full/);
});

test("fullEvery must be a whole number from 1; a day with frequency daily (or hourly, every, now) is refused", async () => {
  const s = await server("    frequency: now\n");
  const cases: [string, RegExp][] = [
    ["    fullEvery: 0\n", /sets\.data\.fullEvery: got 0; allowed: a whole number of backups, 1 or more/],
    ["    fullEvery: 2.5\n", /sets\.data\.fullEvery: got 2\.5; allowed: a whole number/],
    [
      "    frequency: daily\n    day: monday\n",
      /sets\.data\.day: got "monday"; allowed: only with frequency weekly or monthly \(frequency daily has no day: remove it\)/,
    ],
    [
      "    frequency: hourly\n    day: 3\n",
      /sets\.data\.day: got 3; allowed: only with frequency weekly or monthly/,
    ],
  ];
  for (const [lines, message] of cases) {
    await s.write(lines.includes("frequency") ? lines : `    frequency: now\n${lines}`);
    const r = await s.cli("next", "--json");
    assert.equal(r.code, 2, lines);
    assert.match(r.stderr, message);
  }
});

test("init's comments list every frequency and the full cadence; the demo's incremental sets have one", async () => {
  const dir = await tempDir("bsched-cadence-");
  dirs.push(dir);
  const r = await runCli(["init", "--root", "srv"], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const text = await fs.readFile(path.join(dir, "bsched.yaml"), "utf8");
  const lines = text.split("\n").filter((l) => l.trim().startsWith("frequency:"));
  assert.equal(lines.length, 4);
  for (const l of lines) assert.match(l, /# hourly \| daily \| weekly \| monthly \| every \| now\b/);
  assert.match(text, /# fullEvery: 7 /);
  assert.match(text, /# every: 15m /);

  const demo = parseConfig(demoConfigText("UTC"), path.join(dir, "demo.yaml"));
  assert.deepEqual(demo.warnings, []);
  for (const set of demo.sets.values()) {
    if (set.mode === "incremental") assert.ok(set.fullEvery <= 5, set.id);
  }
  assert.ok([...demo.sets.values()].some((x) => x.mode === "incremental"));
});
