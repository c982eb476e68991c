import { type ChildProcessByStdio, spawn } from "node:child_process";
import fsSync from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
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
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; wrap?: string[]; timeoutMs?: number; input?: string } = {},
): Promise<CliResult> {
  const [cmd, ...pre] =
    opts.wrap && opts.wrap.length > 0 ? [...opts.wrap, process.execPath] : [process.execPath];
  const child = spawn(cmd as string, [...pre, BIN, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, BSCHED_CONFIG: undefined, ...opts.env },
    stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    // A CLI that hangs (e.g. waiting on a FIFO) is killed: its exit code is then null.
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs, killSignal: "SIGKILL" as const } : {}),
  });
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  return collect(child as ChildProcessByStdio<null, Readable, Readable>);
}

/** A child's whole stdout and stderr and its exit code, once it has closed. */
export function collect(child: ChildProcessByStdio<null, Readable, Readable>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
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

/** Every folder tempDir made in this process, removed when it exits. */
const made = new Set<string>();

/**
 * A fresh folder under $TMPDIR, removed with everything in it when the test process exits (each
 * test file runs in its own process): a test that fails half-way, or forgets its cleanup, leaves
 * nothing behind (.ci/run checks that the suite leaves its TMPDIR empty).
 */
export async function tempDir(prefix = "bsched-test-"): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  if (made.size === 0) process.once("exit", removeTempDirs);
  made.add(dir);
  return dir;
}

function removeTempDirs(): void {
  for (const dir of made) {
    try {
      // Root (CI, the tests that run the CLI as another user) removes whatever mode the test left.
      fsSync.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      process.stderr.write(`test cleanup: could not remove ${dir}: ${(e as Error).message}\n`);
    }
  }
}
