import type { Command } from "commander";
import { destination, pino } from "pino";
import { runDaemon } from "../../daemon/daemon.ts";
import type { Clock } from "../../platform/clock.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { action } from "../run-action.ts";
import { parseCount } from "./next.ts";

/**
 * Test hook, like BSCHED_TEST_PAUSE_AFTER_FILES: BSCHED_TEST_CLOCK_OFFSET_MS shifts the daemon's
 * clock so a real-process test can put a slot a few seconds ahead, or days behind. Unset: no-op.
 */
function daemonClock(): Clock {
  const offset = Number(process.env.BSCHED_TEST_CLOCK_OFFSET_MS ?? 0);
  if (!Number.isFinite(offset) || offset === 0) return systemClock;
  return { now: () => new Date(Date.now() + offset) };
}

export function registerDaemon(program: Command, exit: ExitBox): void {
  program
    .command("daemon")
    .description("run the automatic sets on their schedules until SIGTERM/SIGINT (SIGHUP reloads the config)")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--log <file>", "append JSON log lines to this file instead of stderr")
    .option(
      "--stop-timeout <seconds>",
      "on SIGTERM, wait this long for a running backup, then abort it",
      "300",
    )
    .action(
      action(exit, async (opts: { config?: string; log?: string; stopTimeout?: string }) => {
        const grace = parseCount(opts.stopTimeout, "--stop-timeout", 300);
        const log = pino(
          { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
          destination({ dest: opts.log ?? 2, sync: true, mkdir: true, append: true }),
        );
        return runDaemon({ configFile: opts.config, clock: daemonClock(), log, stopGraceMs: grace * 1000 });
      }),
    );
}
