import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { plainLine, RotatingLogFile } from "../src/platform/log-file.ts";
import { BIN, tempDir } from "./helpers/cli.ts";
import { waitFor } from "./helpers/live.ts";

/* server.log (issue 14 item 4): the daemon's log file, rotated by size, JSON or plain. */

test("a log file rotates by size: whole lines only, at most `keep` old files, nothing lost but the oldest", async (t) => {
  const dir = await tempDir("bsched-log-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "bsched.log");
  const log = new RotatingLogFile({ file, maxSize: 1000, keep: 2 });
  const lines = Array.from({ length: 100 }, (_, i) => `${JSON.stringify({ n: i, msg: "x".repeat(40) })}\n`);
  for (const l of lines) log.write(l);
  log.close();
  assert.deepEqual((await fs.readdir(dir)).sort(), ["bsched.log", "bsched.log.1", "bsched.log.2"]);
  const kept: string[] = [];
  for (const f of ["bsched.log.2", "bsched.log.1", "bsched.log"]) {
    const text = await fs.readFile(path.join(dir, f), "utf8");
    assert.ok(Buffer.byteLength(text) <= 1000, `${f}: ${Buffer.byteLength(text)} bytes`);
    assert.ok(text.endsWith("\n"), `${f} ends with a whole line`);
    kept.push(...text.split("\n").filter(Boolean));
  }
  // The newest lines, in order, with no gap: the rotation dropped only the oldest file.
  assert.deepEqual(
    kept,
    lines.slice(-kept.length).map((l) => l.trimEnd()),
  );
  assert.ok(kept.length >= 30, `${kept.length} lines kept`);

  // Reopened (a daemon restart): it appends, and rotates from the size already there.
  const again = new RotatingLogFile({ file, maxSize: 1000, keep: 2 });
  const before = (await fs.stat(file)).size;
  again.write("restart\n");
  again.close();
  const after = await fs.readFile(file, "utf8");
  assert.ok(before + 8 > 1000 ? after === "restart\n" : after.endsWith("restart\n"));
});

test("plain format: time, level, message, then fields; one line whatever the values hold", () => {
  const line = plainLine(
    `${JSON.stringify({ level: 40, time: "2026-12-02T04:00:00.000Z", pid: 7, set: "data", err: "two\nlines", n: 3, msg: "backup failed" })}\n`,
  );
  assert.equal(line, '2026-12-02T04:00:00.000Z WARN backup failed set=data err="two\\nlines" n=3\n');
});

test("bsched daemon with server.log: plain lines in the file at the level set, rotated by maxSize, nothing on stderr", async (t) => {
  const dir = await tempDir("bsched-log-daemon-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: UTC
  web: { enabled: false }
  log: { file: logs/daemon.log, format: plain, level: info, maxSize: 1KB, keep: 3 }
sets:
  data: { letter: D, source: Data, frequency: daily }
  arch: { letter: A, source: Data2, frequency: weekly }
  video: { letter: V, source: Data3, frequency: monthly }
  inout: { letter: T, source: Data4, frequency: daily, time: "05:00" }
  extra: { letter: E, source: Data5, frequency: daily, time: "06:00" }
  more: { letter: M, source: Data6, frequency: daily, time: "07:00" }
`,
  );
  const child = spawn(process.execPath, [BIN, "daemon", "--config", config], {
    cwd: dir,
    env: { ...process.env, BSCHED_CONFIG: undefined },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const logs = path.join(dir, "logs");
  const all = async () => {
    const names = (await fs.readdir(logs).catch(() => [] as string[])).sort().reverse();
    let text = "";
    for (const n of names) text += await fs.readFile(path.join(logs, n), "utf8");
    return { names, text };
  };
  await waitFor(
    "daemon started in the log file",
    async () => {
      if (child.exitCode !== null) assert.fail(`the daemon exited ${child.exitCode}: ${stderr}`);
      return (await all()).text.includes(" INFO daemon started ");
    },
    60_000,
  );
  child.kill("SIGTERM");
  assert.equal(await closed, 0, stderr);
  assert.equal(stderr, "", "the log went to its file");
  const { names, text } = await all();
  for (const l of text.split("\n").filter(Boolean))
    assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|ERROR) \S/, l);
  assert.match(text, / INFO daemon stopped/);
  if (Buffer.byteLength(text) > 1000)
    assert.ok(names.includes("daemon.log.1"), `rotated: ${names.join(", ")}`);
  for (const n of names) assert.ok((await fs.stat(path.join(logs, n))).size <= 1000, n);
});
