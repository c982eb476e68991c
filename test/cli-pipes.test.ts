import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { BIN, collect } from "./helpers/cli.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";

// Issue 9 item 8: a reader that closes the pipe early (`bsched status | head -1`) ends the
// output quietly: no EPIPE stack trace, and the command's own exit code (0).

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await fs.rm(s.dir, { recursive: true, force: true });
});

async function server(): Promise<TestServer> {
  const s = await makeServer({ prefix: "bsched-pipes-" });
  servers.push(s);
  // A schedule with many slots, so that `next --count N` has N lines to print.
  const yaml = await fs.readFile(s.config, "utf8");
  await fs.writeFile(s.config, yaml.replace("frequency: now", "frequency: every\n    every: 10s"));
  await fs.writeFile(path.join(s.data, "a.txt"), "hello\n");
  await s.backup();
  return s;
}

/** The CLI with its stdout a pipe whose only reader is closed at once: every write meets EPIPE. */
function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, BSCHED_CONFIG: undefined },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

/** `sh -c "bsched ARGS | head -1"`: the first line, bsched's own exit code and both stderrs. */
async function headOne(args: string[]): Promise<{ stdout: string; stderr: string; bschedCode: string }> {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const child = spawn("sh", ["-c", `{ ${quoted}; echo "rc=$?" >&2; } | head -1`], {
    env: { ...process.env, BSCHED_CONFIG: undefined },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const { code, stdout, stderr } = await collect(child);
  assert.equal(code, 0, `the pipeline failed: ${stderr}`);
  const m = /rc=(\d+)\n$/.exec(stderr);
  return { stdout, stderr: stderr.replace(/rc=\d+\n$/, ""), bschedCode: m?.[1] ?? "?" };
}

test("status, list, history and next with a closed stdout end quietly with exit 0", async () => {
  const s = await server();
  for (const args of [["status"], ["list"], ["history"], ["next", "data"], ["list", "--json"]]) {
    const r = await runWithClosedStdout([...args, "--config", s.config]);
    assert.equal(r.stderr, "", `${args.join(" ")}: stderr should be empty`);
    assert.equal(r.code, 0, `${args.join(" ")}: exit code`);
  }
});

test("`bsched next --count 3000 | head -1`: a large output cut after one line, no stack trace", async () => {
  const s = await server();
  // ~150 KB: far more than a pipe holds, so bsched is still writing when head exits.
  for (const extra of [[], ["--json"]]) {
    const r = await headOne([
      "next",
      "data",
      "--count",
      "3000",
      ...extra,
      "--from",
      "2026-01-01T00:00:00Z",
      "--config",
      s.config,
    ]);
    assert.equal(r.stderr, "", `stderr should be empty, got: ${r.stderr}`);
    assert.equal(r.bschedCode, "0");
    assert.match(r.stdout, extra.length ? /^\[\n$/ : /^data: /);
  }
});
