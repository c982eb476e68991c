import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BIN = fileURLToPath(new URL("../../bin/bsched.js", import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the real CLI in a child process with the Node that runs the tests; `wrap` is a command
 * that runs it (e.g. `/usr/bin/time -v`, or `setpriv` to run it as another user); `timeoutMs`
 * kills it (SIGKILL) if it runs longer, so a hang fails the test instead of blocking the suite.
 */
export function runCli(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; wrap?: string[]; timeoutMs?: number } = {},
): Promise<CliResult> {
  const [cmd, ...pre] =
    opts.wrap && opts.wrap.length > 0 ? [...opts.wrap, process.execPath] : [process.execPath];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd as string, [...pre, BIN, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, BSCHED_CONFIG: undefined, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
      // A CLI that hangs (e.g. waiting on a FIFO) is killed: its exit code is then null.
      ...(opts.timeoutMs ? { timeout: opts.timeoutMs, killSignal: "SIGKILL" as const } : {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

export async function tempDir(prefix = "bsched-test-"): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}
