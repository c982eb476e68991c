import type { Clock } from "../platform/clock.ts";
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
    const sig = await stopped;
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
