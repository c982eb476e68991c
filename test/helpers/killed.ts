import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PAUSED_LINE } from "./paused-backup.ts";

const PAUSED_BACKUP = fileURLToPath(new URL("./paused-backup.ts", import.meta.url));

/** A paused backup process (test/helpers/paused-backup.ts) and a promise of the signal that ends it. */
export interface PausedBackup {
  pid: number;
  kill(): void;
  closed: Promise<NodeJS.Signals | null>;
}

/**
 * Start a real backup process of set `set` (default `data`) that stops dead after `files` stored
 * files (test/helpers/paused-backup.ts); resolves once it has paused. The caller kills it.
 */
export async function pausedBackup(
  s: { config: string; dir: string },
  files: number,
  set = "data",
): Promise<PausedBackup> {
  const child = spawn(process.execPath, [PAUSED_BACKUP, s.config, set, String(files)], {
    cwd: s.dir,
    env: { ...process.env, BSCHED_CONFIG: undefined },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const closed = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on("close", (_c, signal) => resolve(signal)),
  );
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (d) => {
      stderr += d;
      if (stderr.includes(PAUSED_LINE)) resolve();
    });
    child.on("close", () => reject(new Error(`backup ended before pausing: ${stderr}`)));
  });
  return { pid: child.pid as number, kill: () => child.kill("SIGKILL"), closed };
}

/**
 * A backup of set `data` stopped dead after `files` stored files (pausedBackup), `whilePaused` run
 * with its pid, then the process killed with SIGKILL (a crash, a power cut). Returns the pid it had.
 */
export async function backupKilledMidway(
  s: { config: string; dir: string },
  files: number,
  whilePaused?: (pid: number) => Promise<void>,
): Promise<number> {
  const p = await pausedBackup(s, files);
  try {
    await whilePaused?.(p.pid);
  } finally {
    p.kill();
  }
  assert.equal(await p.closed, "SIGKILL");
  return p.pid;
}
