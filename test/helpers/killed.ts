import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { BIN } from "./cli.ts";
import type { TestServer } from "./server.ts";

/**
 * A CLI backup of set `data` stopped dead after `files` stored files (the
 * BSCHED_TEST_PAUSE_AFTER_FILES hook), `whilePaused` run with its pid, then the process killed
 * with SIGKILL (a crash, a power cut). Returns the pid it had.
 */
export async function backupKilledMidway(
  s: TestServer,
  files: number,
  whilePaused?: (pid: number) => Promise<void>,
): Promise<number> {
  const child = spawn(process.execPath, [BIN, "backup", "data", "--config", s.config], {
    cwd: s.dir,
    env: { ...process.env, BSCHED_CONFIG: undefined, BSCHED_TEST_PAUSE_AFTER_FILES: String(files) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const closed = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on("close", (_c, signal) => resolve(signal)),
  );
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (d) => {
      stderr += d;
      if (stderr.includes("bsched-test: paused\n")) resolve();
    });
    child.on("close", () => reject(new Error(`backup ended before pausing: ${stderr}`)));
  });
  try {
    await whilePaused?.(child.pid as number);
  } finally {
    child.kill("SIGKILL");
  }
  assert.equal(await closed, "SIGKILL");
  return child.pid as number;
}
