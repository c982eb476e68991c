import { spawn } from "node:child_process";

/** After SIGTERM on timeout or cancel, the command's process group gets this long before SIGKILL. */
const KILL_GRACE_MS = 2_000;

export interface CommandOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  ms: number;
}

export interface CommandOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string | undefined;
  /** Put before each line of its output in the log (`hook set before`, `drill check`). */
  label: string;
  log: (line: string) => void;
  timeoutS: number;
  signal?: AbortSignal | undefined;
}

/**
 * Run an administrator's command (a hook, a drill's check) in its own process group, its output
 * sent to `log` line by line. On timeout or cancel the whole group (the shell and whatever it
 * started) is terminated. The outcome is returned, never thrown: the caller decides what a
 * failure means.
 */
export function runCommand(file: string, args: string[], opts: CommandOptions): Promise<CommandOutcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      detached: true,
      env: opts.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const log = (line: string) => opts.log(`${opts.label}: ${line}`);
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
      log(`still running after ${opts.timeoutS} s: terminating it`);
      stop();
    }, opts.timeoutS * 1000);
    opts.signal?.addEventListener("abort", stop, { once: true });
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener("abort", stop);
      // A command may leave a service running in the background that still holds our pipes:
      // stop waiting on them, without closing them under it.
      (child.stdout as unknown as { unref?: () => void }).unref?.();
      (child.stderr as unknown as { unref?: () => void }).unref?.();
      resolve({ code, signal, timedOut, ms: performance.now() - t0 });
    };
    child.on("error", (e) => {
      log(`cannot start: ${e.message}`);
      done(127, null);
    });
    child.on("exit", done);
  });
}

/** The outcome in words: `exited with code 3`, `was killed by SIGKILL`, `did not finish within 60 s…`. */
export function describeOutcome(o: CommandOutcome, timeoutS: number): string {
  if (o.timedOut) return `did not finish within ${timeoutS} s and was terminated`;
  if (o.signal) return `was killed by ${o.signal}`;
  return `exited with code ${o.code}`;
}

/** Call `fn` with each line `stream` gives (without its newline), the last one even without one. */
function eachLine(stream: NodeJS.ReadableStream, fn: (line: string) => void): void {
  let rest = "";
  stream.setEncoding?.("utf8");
  stream.on("data", (chunk: string) => {
    rest += chunk;
    const parts = rest.split("\n");
    rest = parts.pop() ?? "";
    for (const p of parts) fn(p);
  });
  stream.on("end", () => {
    if (rest) fn(rest);
  });
}
