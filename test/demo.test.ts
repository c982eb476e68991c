import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { BIN, runCli, tempDir } from "./helpers/cli.ts";
import { checkDbIntegrity } from "./helpers/live.ts";

test("bsched demo: creates a live server, makes a first backup, proves it restorable by a drill, and stops cleanly on Ctrl-C", async () => {
  const dir = await tempDir("bsched-demo-");
  const demo = path.join(dir, "d");
  const child = spawn(process.execPath, [BIN, "demo", "--dir", demo, "--listen", "127.0.0.1:0"], {
    env: { ...process.env, BSCHED_CONFIG: undefined },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        // The first backup, then the drill of it (issue 14) with its result.
        if (/backup data: D_\S+ \(full separate\)/.test(stderr) && /drill data from local: /.test(stderr))
          resolve();
      };
      child.stderr.on("data", check);
      child.on("close", () => reject(new Error(`demo ended before a backup: ${stderr}`)));
    });
  } finally {
    child.kill("SIGINT");
  }
  assert.equal(await closed, 0, stderr);
  assert.match(stderr, /stopped\. The demo stays in/);
  assert.match(
    stderr,
    /drill data from local: D_\S+ \(newest\): PROVEN RESTORABLE: restored in \d+\.\d s, \d+ files/,
  );
  assert.match(stderr, /ok {3}sqlite cardholders\.db: integrity_check: ok/);
  assert.match(stderr, /demo server: stopped after \d+ rounds/);
  // The window: where it is, and how to log in the first time (the one-time setup link).
  assert.match(stderr, /window at http:\/\/127\.0\.0\.1:\d+\//);
  // And where Prometheus scrapes it (issue 14).
  assert.match(
    stderr,
    /metrics at http:\/\/127\.0\.0\.1:\d+\/metrics \(health: http:\/\/127\.0\.0\.1:\d+\/healthz\)/,
  );
  assert.match(
    stderr,
    /open http:\/\/127\.0\.0\.1:\d+\/setup#token=[A-Za-z0-9_-]{43} to create the first administrator/,
  );

  const config = path.join(demo, "bsched.yaml");
  const st = await runCli(["status", "--offline", "--config", config]);
  assert.match(st.stdout, /drill local: last proven restorable /);
  const list = await runCli(["list", "data", "--json", "--config", config]);
  assert.equal(list.code, 0, list.stderr);
  const backups = JSON.parse(list.stdout) as { name: string }[];
  assert.ok(backups.length >= 1);
  const out = path.join(dir, "restored");
  const r = await runCli(["restore", "data", "--to", out, "--config", config]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(checkDbIntegrity(path.join(out, "cardholders.db")), "ok");
  assert.deepEqual(
    (await fs.readdir(path.join(demo, "server", "Data"))).filter((n) => n === ".bsched-lock"),
    [],
  );
  await fs.rm(dir, { recursive: true, force: true });
});
