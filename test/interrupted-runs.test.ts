import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, test } from "node:test";
import { CATALOG_V1_TABLES } from "./helpers/catalog-v1.ts";
import { BIN } from "./helpers/cli.ts";
import { backupKilledMidway } from "./helpers/killed.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";

// Issue 9 item 7: a killed run showed "running" for ever in `history` (and `status`), even after
// `catalog check`. A run whose process is gone is shown as interrupted at once, and recorded so
// by the next command that writes the catalog.

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await fs.rm(s.dir, { recursive: true, force: true });
});

async function server(): Promise<TestServer> {
  const s = await makeServer({ prefix: "bsched-interrupted-" });
  servers.push(s);
  for (let i = 0; i < 5; i++) await fs.writeFile(path.join(s.data, `f${i}`), `file ${i}\n`.repeat(50));
  return s;
}

/** A CLI backup killed (SIGKILL) after 2 stored files; `whilePaused` runs first. Returns its pid. */
const killedBackup = (s: TestServer, whilePaused?: (pid: number) => Promise<void>) =>
  backupKilledMidway(s, 2, whilePaused);

type Row = {
  id: number;
  status: string;
  finished_at: string | null;
  error: string | null;
  pid: number | null;
};

function catalogRows(s: TestServer): Row[] {
  const db = new DatabaseSync(path.join(s.root, ".bsched", "catalog.db"), { readOnly: true });
  try {
    return db.prepare("SELECT id, status, finished_at, error, pid FROM runs ORDER BY id").all() as Row[];
  } finally {
    db.close();
  }
}

async function json(s: TestServer, args: string[]) {
  const r = await s.cli([...args, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test("kill -9 of a CLI backup: history and status show it interrupted; catalog check records it", async () => {
  const s = await server();
  const pid = await killedBackup(s, async (live) => {
    // While its process lives, the run is running, and catalog check leaves it so.
    const [run] = await json(s, ["history"]);
    assert.equal(run.status, "running");
    assert.equal(run.pid, live);
    await json(s, ["catalog", "check"]);
    assert.equal(catalogRows(s)[0]?.status, "running");
  });

  const [run] = await json(s, ["history"]);
  assert.equal(run.status, "interrupted");
  assert.match(run.error, new RegExp(`^process ${pid} ended without recording a result \\(noticed `));
  const st = await json(s, ["status"]);
  assert.equal(st.sets[0].lastRun.status, "interrupted");
  const human = await s.cli(["history"]);
  assert.match(human.stdout, /manual {2}interrupted .*process \d+ ended without recording a result/);
  assert.equal(catalogRows(s)[0]?.status, "running", "history and status only read the catalog");

  const repairs = await json(s, ["catalog", "check"]);
  assert.deepEqual(
    repairs[0].interrupted.map((i: { id: number }) => i.id),
    [run.id],
  );
  const [row] = catalogRows(s);
  assert.equal(row?.status, "interrupted");
  assert.equal(row?.pid, pid);
  assert.ok(row?.finished_at, "when it was noticed");
  assert.match(row?.error ?? "", new RegExp(`process ${pid} ended without recording a result`));
  const again = await json(s, ["catalog", "check"]);
  assert.deepEqual(again[0].interrupted, [], "recorded once");
});

test("the next backup records a killed run as interrupted, then runs and records its own", async () => {
  const s = await server();
  const pid = await killedBackup(s);
  const b = await s.backup();
  const rows = catalogRows(s);
  assert.deepEqual(
    rows.map((r) => r.status),
    ["interrupted", "ok"],
  );
  assert.match(rows[0]?.error ?? "", new RegExp(`process ${pid} ended`));
  const [last] = await json(s, ["history"]);
  assert.equal(last.backup, b.name);
});

test("a catalog of schema 1 is migrated in place; its running runs (no pid) are interrupted by catalog check", async () => {
  const s = await server();
  const state = path.join(s.root, ".bsched");
  await fs.mkdir(state, { recursive: true });
  const db = new DatabaseSync(path.join(state, "catalog.db"));
  db.exec(`
${CATALOG_V1_TABLES}
INSERT INTO runs (set_id, trigger, started_at, status) VALUES ('data', 'manual', '2026-01-01T04:00:00.000Z', 'running');
INSERT INTO runs (set_id, trigger, started_at, finished_at, status) VALUES ('data', 'manual', '2026-01-02T04:00:00.000Z', '2026-01-02T04:00:09.000Z', 'ok');
PRAGMA user_version = 1;
`);
  db.close();
  const before = await json(s, ["history"]);
  assert.deepEqual(
    before.map((r: { status: string; pid: number | null }) => [r.status, r.pid]),
    [
      ["ok", null],
      ["running", null],
    ],
    "without a pid, reading cannot tell: shown as recorded",
  );
  await json(s, ["catalog", "check"]);
  const rows = catalogRows(s);
  assert.deepEqual(
    rows.map((r) => r.status),
    ["interrupted", "ok"],
  );
  assert.match(rows[0]?.error ?? "", /older bsched/);
});

/** `bsched daemon` started and, once it logged `until`, stopped with SIGTERM; returns its log. */
async function daemonStart(s: TestServer, until: string): Promise<string> {
  const child = spawn(process.execPath, [BIN, "daemon", "--config", s.config], {
    cwd: s.dir,
    env: { ...process.env, BSCHED_CONFIG: undefined },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (d) => {
      stderr += d;
      if (stderr.includes(until)) resolve();
    });
    child.on("close", () => reject(new Error(`daemon ended before "${until}": ${stderr}`)));
  });
  child.kill("SIGTERM");
  assert.equal(await closed, 0, stderr);
  return stderr;
}

test("daemon start records a killed run as interrupted, and leaves a live manual backup's run alone", async () => {
  const s = await server();
  await killedBackup(s);
  assert.match(await daemonStart(s, '"daemon started"'), /a run was interrupted: recorded so/);
  assert.deepEqual(
    catalogRows(s).map((r) => r.status),
    ["interrupted"],
  );
  await killedBackup(s, async () => {
    // A manual backup is running (paused) while the daemon starts: its run is not touched.
    assert.doesNotMatch(await daemonStart(s, '"daemon started"'), /a run was interrupted/);
    assert.deepEqual(
      catalogRows(s).map((r) => r.status),
      ["interrupted", "running"],
    );
  });
  await daemonStart(s, '"daemon started"');
  assert.deepEqual(
    catalogRows(s).map((r) => r.status),
    ["interrupted", "interrupted"],
  );
});
