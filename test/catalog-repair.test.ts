import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { runCli, tempDir } from "./helpers/cli.ts";

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

test("the folders are the truth: check repairs a catalog that disagrees, rebuild recreates a damaged one", async () => {
  const dir = await tempDir("bsched-catrepair-");
  dirs.push(dir);
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  await fs.writeFile(path.join(dir, "srv", "Data", "x"), "x");
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    "server:\n  root: srv\n  timezone: UTC\nsets:\n  data:\n    letter: D\n    source: Data\n    frequency: daily\n",
  );
  const cli = (...args: string[]) => runCli([...args, "--config", config], { cwd: dir });
  const made: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await cli("backup", "data", "--json");
    assert.equal(r.code, 0, r.stderr);
    made.push(JSON.parse(r.stdout).name);
  }
  // A catalog that lost them (here: deleted): check adds them back from the folders.
  const db = path.join(dir, "srv", ".bsched", "catalog.db");
  for (const ext of ["", "-wal", "-shm"]) await fs.rm(db + ext, { force: true });
  let r = await cli("catalog", "check", "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    { set: "data", added: made, removed: [], updated: [], interrupted: [] },
  ]);
  r = await cli("catalog", "check", "--json");
  assert.deepEqual(JSON.parse(r.stdout)[0].added, [], "now in agreement");

  // A backup folder removed by hand: the catalog drops it.
  await fs.rm(path.join(dir, "srv", "Backup", made[0] as string), { recursive: true });
  r = await cli("catalog", "check", "--json");
  assert.deepEqual(JSON.parse(r.stdout)[0].removed, [made[0]]);

  // A damaged catalog: commands say so and how to fix it; rebuild recreates it from the folders.
  for (const ext of ["-wal", "-shm"]) await fs.rm(db + ext, { force: true });
  await fs.writeFile(db, "garbage ".repeat(1000));
  r = await cli("history", "--json");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot open the catalog.*\n.*bsched catalog rebuild/);
  r = await cli("catalog", "rebuild", "--json");
  assert.equal(r.code, 0, r.stderr);
  const rebuilt = JSON.parse(r.stdout);
  assert.equal(rebuilt.backups, 2);
  assert.match(rebuilt.movedAside, /catalog\.db\.old-/);
  r = await cli("history", "data", "--json");
  assert.deepEqual(
    (JSON.parse(r.stdout) as { backup: string; trigger: string }[]).map((x) => [x.trigger, x.backup]),
    [
      ["rebuild", made[2]],
      ["rebuild", made[1]],
    ],
  );
  r = await cli("status", "--json");
  const st = JSON.parse(r.stdout);
  assert.equal(st.sets[0].backups.count, 2);
  assert.equal(st.sets[0].lastRun.backup, made[2]);
});
