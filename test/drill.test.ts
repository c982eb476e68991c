import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { openSqliteCatalog } from "../src/catalog/sqlite/sqlite-catalog.ts";
import { systemClock } from "../src/platform/clock.ts";
import { acquireLock } from "../src/platform/lockfile.ts";
import { BIN, collect } from "./helpers/cli.ts";
import { type DrillJson, damageCardsDb, integrityOf, writeCardsDb } from "./helpers/drill.ts";
import { makeServer } from "./helpers/server.ts";
import { webhookReceiver } from "./helpers/webhook.ts";

// Issue 14 item 1, "Must show": restore drills with real backups, through the real CLI.

async function drillServer(drillKeys: string, extraSetKeys: string[] = []) {
  const s = await makeServer({
    prefix: "bsched-drill-",
    setKeys: [...extraSetKeys, `drill: { ${drillKeys} }`],
  });
  return { ...s, scratch: path.join(s.dir, "scratch") };
}

const catalogDrills = (root: string) => {
  const c = openSqliteCatalog(path.join(root, ".bsched", "catalog.db"));
  try {
    return c.drills();
  } finally {
    c.close();
  }
};

test("a drill of an intact set restores the newest and an older backup, checks them, records the evidence with the restore time, and leaves no scratch", async (t) => {
  const s = await drillServer(
    `scratch: ../scratch, check: 'test -s "$1/cards.db" && test "$BSCHED_DRILL_DIR" = "$1" && test "$PWD" = "$1"'`,
  );
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await writeCardsDb(path.join(s.data, "cards.db"));
  await fs.writeFile(path.join(s.data, "doors.txt"), "front, back\n");
  const first = await s.backup();
  await writeCardsDb(path.join(s.data, "cards.db"), 400);
  const second = await s.backup();

  const r = await s.cli(["drill", "data", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as DrillJson;
  assert.equal(out.ok, true);
  assert.deepEqual(
    out.drills.map((d) => [d.destination, d.backup, d.pick, d.ok]),
    [
      ["local", second.name, "newest", true],
      ["local", first.name, "older", true],
    ],
  );
  for (const d of out.drills) {
    assert.equal(typeof d.restoreMs, "number");
    assert.ok((d.restoreMs as number) >= 0);
    assert.ok(Date.parse(d.finishedAt) >= Date.parse(d.startedAt));
    assert.equal(d.files, 2);
    assert.deepEqual(
      d.checks.map((c) => [c.name, c.ok]),
      [
        ["restore", true],
        ["sqlite cards.db", true],
        ["command", true],
      ],
    );
    assert.match(d.checks[1]?.detail ?? "", /^integrity_check: ok$/);
  }
  // The evidence is in the catalog, as printed.
  const recorded = catalogDrills(s.root);
  assert.deepEqual(
    recorded.map((d) => [d.backup, d.ok, d.restoreMs, d.checks.length]).reverse(),
    out.drills.map((d) => [d.backup, d.ok, d.restoreMs, d.checks.length]),
  );
  // Nothing is left in the scratch folder.
  assert.deepEqual(await fs.readdir(s.scratch), []);

  // `status` shows "last proven restorable" per place, with the restore time.
  const st = await s.cli(["status", "--json", "--offline"]);
  assert.equal(st.code, 0, st.stderr);
  const places = JSON.parse(st.stdout).sets[0].drills.places;
  assert.deepEqual(
    places.map((p: { destination: string; lastProven: { backup: string; restoreMs: number } }) => [
      p.destination,
      p.lastProven.backup,
      p.lastProven.restoreMs,
    ]),
    [["local", second.name, out.drills[0]?.restoreMs]],
  );
  const stText = await s.cli(["status", "--offline"]);
  assert.match(
    stText.stdout,
    new RegExp(`drill local: last proven restorable [^(]+ \\(${second.name}, restore \\d+\\.\\d s\\)\\n`),
  );

  // For a person: the verdict, the recovery time and each check on stdout.
  const human = await s.cli(["drill", "data", "--backup", first.name]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(
    human.stdout,
    new RegExp(
      `drill data from local: ${first.name} \\(chosen\\): PROVEN RESTORABLE: restored in \\d+\\.\\d s`,
    ),
  );
  assert.match(human.stdout, /ok {3}sqlite cards\.db: integrity_check: ok/);
});

test("a drill of a backup holding a damaged database fails on integrity_check, says which and what to do, and notifies drill_failed", async (t) => {
  const hook = await webhookReceiver({ after: (fn) => t.after(fn) });
  const s = await drillServer("scratch: ../scratch", [`notify: { webhook: "${hook.url("/hook")}" }`]);
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const db = path.join(s.data, "cards.db");
  await writeCardsDb(db);
  await damageCardsDb(db);
  assert.match(integrityOf(db), /missing from index/, "the source database is damaged before the backup");
  const b = await s.backup();
  // The backup itself is intact: its digest matches what it holds.
  const verify = await s.cli(["verify", "data"]);
  assert.equal(verify.code, 0, verify.stderr);

  const r = await s.cli(["drill", "data"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stdout,
    new RegExp(`drill data from local: ${b.name} \\(newest\\): FAILED \\[DRILL_FAILED\\]`),
  );
  assert.match(r.stdout, /FAIL sqlite cards\.db: integrity_check: row \d+ missing from index cards_holder/);
  assert.match(
    r.stderr,
    /bsched: error: drill of set data from local: D_\S+: sqlite cards\.db failed: integrity_check/,
  );
  assert.match(r.stderr, /hint: the backup holds a damaged database \(cards\.db\)/);
  assert.deepEqual(
    hook.posts.map((p) => [p.event, p.set, p.status, p.destination, p.backup]),
    [["drill_failed", "data", "failed", "local", b.name]],
  );
  assert.match(hook.posts[0]?.error ?? "", /integrity_check/);
  const st = await s.cli(["status", "--offline"]);
  assert.match(
    st.stdout,
    /drill local: never proven restorable; last drill FAILED at [^[]+ \[DRILL_FAILED\]: drill of set data/,
  );
  assert.match(st.stdout, /hint: the backup holds a damaged database/);
  const [rec] = catalogDrills(s.root);
  assert.equal(rec?.ok, false);
  assert.equal(rec?.errorCode, "DRILL_FAILED");
  assert.deepEqual(await fs.readdir(s.scratch), []);
});

test("a drill is refused before restoring when the scratch folder lacks room: over drill.maxSize, or a small file system", async (t) => {
  const s = await drillServer("scratch: ../scratch, maxSize: 10KB");
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "big.bin"), Buffer.alloc(50_000, 7));
  const b = await s.backup();
  const r = await s.cli(["drill", "data", "--json"]);
  assert.equal(r.code, 1);
  const out = JSON.parse(r.stdout) as DrillJson;
  const [d] = out.drills;
  assert.equal(d?.errorCode, "DISK_FULL");
  assert.equal(d?.restoreMs, null, "nothing was restored");
  assert.deepEqual(d?.checks, []);
  assert.match(
    d?.error ?? "",
    new RegExp(`${b.name} restores 0\\.1 MB, more than drill\\.maxSize \\(0\\.0 MB\\); nothing was restored`),
  );
  assert.match(r.stderr, /hint: raise sets\.data\.drill\.maxSize/);
  assert.deepEqual(await fs.readdir(s.scratch).catch(() => []), [], "no scratch folder was made");

  // A small file system (a 1 MiB tmpfs, as root): refused for lack of room there.
  const tiny = path.join(s.dir, "tiny");
  await fs.mkdir(tiny);
  const mounted =
    process.getuid?.() === 0 &&
    spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", tiny]).status === 0;
  if (!mounted) {
    t.diagnostic("not root or no tmpfs: the small file system case is covered by maxSize alone");
    return;
  }
  try {
    const config = await fs.readFile(s.config, "utf8");
    await fs.writeFile(
      s.config,
      config.replace("scratch: ../scratch, maxSize: 10KB", "scratch: ../tiny/scratch"),
    );
    const r2 = await s.cli(["drill", "data"]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /the scratch folder \S+tiny\/scratch has \d+\.\d MB free .*nothing was restored/);
    assert.match(r2.stderr, /hint: free space there, or set sets\.data\.drill\.scratch/);
    assert.deepEqual(await fs.readdir(tiny), []);
  } finally {
    spawnSync("umount", [tiny]);
  }
});

test("a failing check command fails the drill naming it; the folder reaches it as an argument, never as command text", async (t) => {
  const s = await drillServer(`scratch: "../scr $(touch pwned)", check: 'echo "checking $1" >&2; exit 3'`);
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  await s.backup();
  const r = await s.cli(["drill", "data"]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /FAIL command: "echo \\"checking \$1\\" >&2; exit 3" exited with code 3/);
  assert.match(
    r.stderr,
    /bsched: error: drill of set data from local: D_\S+: check command failed: .*exited with code 3/,
  );
  assert.match(r.stderr, /hint: the check command \(sets\.data\.drill\.check\) found a problem/);
  assert.match(
    r.stderr,
    /drill check: checking \S+scr \$\(touch pwned\)\/bsched-drill-data-\d+-[0-9a-f]+\/restore/,
  );
  await assert.rejects(fs.access(path.join(s.dir, "pwned")), "nothing ran from the folder's name");
  await assert.rejects(fs.access(path.join(s.root, "pwned")));
  assert.deepEqual(await fs.readdir(path.join(s.dir, "scr $(touch pwned)")), []);
});

test("a drill killed mid-way leaves its scratch folder, which the next drill removes; a drill waits for no backup: LOCKED while one runs", async (t) => {
  const s = await drillServer(
    `scratch: ../scratch, check: 'if [ -f ../../once ]; then exit 0; fi; touch ../../once; echo $$ > ../../pid; sleep 60'`,
  );
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  await s.backup();
  const child = spawn(process.execPath, [BIN, "drill", "data", "--config", s.config], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const done = collect(child);
  const pidFile = path.join(s.scratch, "pid");
  for (let i = 0; i < 600; i++) {
    const text = await fs.readFile(pidFile, "utf8").catch(() => "");
    if (text.trim() !== "") break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const checkPid = Number((await fs.readFile(pidFile, "utf8")).trim());
  child.kill("SIGKILL");
  await done;
  try {
    process.kill(-checkPid, "SIGKILL");
  } catch {}
  const left = (await fs.readdir(s.scratch)).filter((n) => n.startsWith("bsched-drill-"));
  assert.equal(left.length, 1, "the killed drill's folder is left");

  // The set's run lock is held (a backup running elsewhere): the drill does not start.
  const lock = await acquireLock(
    path.join(s.backups, ".bsched-data.lock"),
    "backup of set data",
    systemClock,
  );
  const locked = await s.cli(["drill", "data"]);
  await lock.release();
  assert.equal(locked.code, 1);
  assert.match(locked.stderr, /bsched: error: .*locked by backup of set data/);

  const r = await s.cli(["drill", "data", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as DrillJson;
  assert.deepEqual(out.removed, [path.join(s.scratch, left[0] as string)]);
  assert.deepEqual(
    (await fs.readdir(s.scratch)).filter((n) => n.startsWith("bsched-drill-")),
    [],
  );
});
