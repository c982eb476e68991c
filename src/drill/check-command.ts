import { spawn } from "node:child_process";
import { eachLine } from "../platform/lines.ts";

/** After SIGTERM on timeout, the command's process group gets this long before SIGKILL. */
const KILL_GRACE_MS = 2_000;

export interface CheckCommandOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

/**
 * Run a drill's `check` command on the restored folder: `sh -c CMD` with the folder as `$1`, in
 * `$BSCHED_DRILL_DIR` and as the working directory, never spliced into the command's text (a
 * folder name cannot inject anything). Its own process group, terminated whole on timeout or
 * cancel; its output goes to `log` line by line. The outcome is returned, never thrown.
 */
export function runCheckCommand(
  cmd: string,
  dir: string,
  env: Record<string, string>,
  opts: { timeoutS: number; log: (line: string) => void; signal?: AbortSignal | undefined },
): Promise<CheckCommandOutcome> {
  return new Promise((resolve) => {
    const child = spawn("/bin/sh", ["-c", cmd, "bsched-drill-check", dir], {
      cwd: dir,
      detached: true,
      env: { ...process.env, ...env, BSCHED_DRILL_DIR: dir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const log = (line: string) => opts.log(`drill check: ${line}`);
    eachLine(child.stdout, log);
    eachLine(child.stderr, log);
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // Already gone.
      }
    };
    const stop = () => {
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      opts.log(`drill check: still running after ${opts.timeoutS} s: terminating it`);
      stop();
    }, opts.timeoutS * 1000);
    opts.signal?.addEventListener("abort", stop, { once: true });
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener("abort", stop);
      (child.stdout as unknown as { unref?: () => void }).unref?.();
      (child.stderr as unknown as { unref?: () => void }).unref?.();
      resolve({ code, signal, timedOut });
    };
    child.on("error", (e) => {
      opts.log(`drill check: cannot start: ${e.message}`);
      done(127, null);
    });
    child.on("exit", done);
  });
}

/** The outcome in words: `exited with code 3`, `was killed by SIGKILL`, `did not finish within 60 s`. */
export function describeOutcome(o: CheckCommandOutcome, timeoutS: number): string {
  if (o.timedOut) return `did not finish within ${timeoutS} s and was terminated`;
  if (o.signal) return `was killed by ${o.signal}`;
  return `exited with code ${o.code}`;
}
