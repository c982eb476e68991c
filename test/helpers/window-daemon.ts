import { spawn } from "node:child_process";
import { BIN } from "./cli.ts";

/**
 * `bsched daemon` as a real process (bin/bsched.js), its JSON log lines read as they come: for
 * tests of the window through a listening daemon. Give its config `web: { listen: "127.0.0.1:0" }`
 * and read the port from the log: `(await d.waitFor((m) => m.startsWith("window at "), …))`; the
 * one-time setup link is the line with `/setup#token=` (or add a user first with
 * `bsched user add NAME --stdin`). Kill it in `t.after` if the test did not stop it.
 */
export function windowDaemon(config: string, cwd: string) {
  const child = spawn(process.execPath, [BIN, "daemon", "--config", config], {
    cwd,
    env: { ...process.env, BSCHED_CONFIG: undefined },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  const lines = () =>
    stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { msg: string; level: number });
  return {
    child,
    closed,
    stderr: () => stderr,
    async waitFor(pred: (msg: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = lines().find((l) => pred(l.msg));
        if (hit) return hit.msg;
        if (Date.now() > until || child.exitCode !== null) throw new Error(`no ${what}; stderr:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
