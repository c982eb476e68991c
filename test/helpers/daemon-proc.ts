import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("./daemon-child.ts", import.meta.url));
const children: ChildProcess[] = [];

/** SIGKILL every daemon still running (a test's `after`): a failed test leaves no process behind. */
export function killDaemons(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
}

export interface Daemon {
  child: ChildProcess;
  log: () => { msg: string; [k: string]: unknown }[];
  waitLog(msg: string, timeoutMs?: number): Promise<{ [k: string]: unknown }>;
  waitFor(
    pred: (l: { msg: string; [k: string]: unknown }) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<{ [k: string]: unknown }>;
  exited: Promise<number | null>;
}

/** A daemon process (test/helpers/daemon-child.ts) whose clock starts at `clockStart`; its log parsed. */
export function startDaemon(config: string, cwd: string, clockStart: number, stopTimeoutS?: number): Daemon {
  const args = [
    CHILD,
    config,
    new Date(clockStart).toISOString(),
    ...(stopTimeoutS ? [String(stopTimeoutS)] : []),
  ];
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, BSCHED_CONFIG: undefined },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  child.stdout?.resume();
  const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  const log = () =>
    stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
  return {
    child,
    log,
    exited,
    waitLog(msg, timeoutMs = 60_000) {
      return this.waitFor((l) => l.msg === msg, timeoutMs, msg);
    },
    async waitFor(pred, timeoutMs = 60_000, what = "matching log line") {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = log().find(pred);
        if (hit) return hit;
        if (Date.now() > until || child.exitCode !== null)
          throw new Error(`no ${what} (exit ${child.exitCode}); stderr:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
