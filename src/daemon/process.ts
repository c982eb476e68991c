import fs from "node:fs/promises";
import path from "node:path";
import type { WebServer } from "../api/web.ts";
import type { WebConfig } from "../config/load.ts";
import type { Clock } from "../platform/clock.ts";
import { writeFileAtomic } from "../platform/fsutil.ts";
import { WINDOW_FILE } from "../platform/names.ts";
import type { Log, Timer } from "./scheduler.ts";
import { DaemonService } from "./service.ts";

export interface DaemonOptions {
  configFile?: string | undefined;
  clock: Clock;
  log: Log;
  timer?: Timer;
  /** How long SIGTERM waits for running backups before aborting them. */
  stopGraceMs?: number;
  /** Polling interval of the config file (a change reloads it). */
  watchMs?: number;
  /** Over the config's server.web: `bsched demo --listen`, or tests' daemons with no window. */
  web?: Partial<WebConfig>;
}

/**
 * `bsched daemon` as a process: a DaemonService plus what only a process has. SIGTERM/SIGINT stop
 * it (running backups may finish within `stopGraceMs`; a second signal aborts them at once), SIGHUP
 * reloads the config. Resolves with the exit code: 0 stopped cleanly, 1 backups had to be aborted
 * (then the process exits at once: an aborted backup that does not honour its signal yet would
 * hold the event loop). The log is set up by the caller (src/cli/commands/daemon.ts).
 */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const { log } = opts;
  const service = new DaemonService({
    configFile: opts.configFile,
    clock: opts.clock,
    log,
    timer: opts.timer,
    watchMs: opts.watchMs,
  });
  let stopRequested: ((sig: string) => void) | undefined;
  const stopped = new Promise<string>((r) => {
    stopRequested = r;
  });
  let started = false;
  let signals = 0;
  const onStop = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1 && started) {
      log.warn({ signal: sig }, "second stop signal: aborting now");
      service.abortNow();
      return;
    }
    stopRequested?.(sig);
  };
  // A SIGHUP before the service runs has nothing to reload: the config is being read anyway.
  const onHup = () => started && service.reload("SIGHUP");
  // Installed before start(): a SIGTERM as soon as "daemon started" is logged must stop it cleanly.
  process.on("SIGTERM", onStop);
  process.on("SIGINT", onStop);
  process.on("SIGHUP", onHup);
  try {
    await service.start();
    started = true;
    const web = await startWindow(service, opts);
    const sig = await stopped;
    await web?.close().catch((e) => log.warn({ err: (e as Error).message }, "window: close failed"));
    const r = await service.stop({ graceMs: opts.stopGraceMs ?? 300_000, why: sig });
    // The aborted backup's promise may still hold the event loop: leave now, cleanly recorded.
    if (!r.finished) process.exit(1);
    return 0;
  } finally {
    process.off("SIGTERM", onStop);
    process.off("SIGINT", onStop);
    process.off("SIGHUP", onHup);
  }
}

/**
 * The window and its API (server.web), once the service runs: logs `window at URL`, and the
 * one-time setup link while no user exists. A window that cannot start (address in use, TLS
 * files) is logged as an error and the daemon runs on without it: backups come first.
 */
async function startWindow(service: DaemonService, opts: DaemonOptions): Promise<WebServer | undefined> {
  const { log } = opts;
  const web = { ...service.config.web, ...opts.web };
  if (!web.enabled) return undefined;
  try {
    // Loaded here: only a daemon with its window needs fastify and the window's code.
    const [{ startWeb }, { sessionAuth }] = await Promise.all([
      import("../api/web.ts"),
      import("../api/auth/session-auth.ts"),
    ]);
    const auth = sessionAuth({
      state: service.config.state,
      clock: opts.clock,
      log,
      secure: web.tls !== undefined,
    });
    const server = await startWeb({ service, clock: opts.clock, log, auth, web });
    log.info({}, `window at ${server.url}`);
    log.info({}, `metrics at ${server.url}metrics (health: ${server.url}healthz)`);
    try {
      auth.announce(server.url);
    } catch (e) {
      // users.json damaged: the window runs (and refuses every login) until it is repaired.
      const err = e as Error & { hint?: string };
      log.error(
        { err: err.message, ...(err.hint ? { hint: err.hint } : {}) },
        "window: the users cannot be read",
      );
    }
    // For `bsched status`: where the window is. Advice only: a failure to write it changes nothing.
    const file = path.join(service.config.state, WINDOW_FILE);
    await writeFileAtomic(file, `${JSON.stringify({ url: server.url, pid: process.pid })}\n`).catch(
      () => undefined,
    );
    return {
      url: server.url,
      close: async () => {
        await fs.rm(file, { force: true });
        await server.close();
      },
    };
  } catch (e) {
    const err = e as Error & { hint?: string };
    log.error(
      { err: err.message, ...(err.hint ? { hint: err.hint } : {}) },
      "the window did not start: the daemon runs its schedules without it",
    );
    return undefined;
  }
}
