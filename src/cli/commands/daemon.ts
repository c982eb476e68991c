import type { Command } from "commander";
import { destination, pino } from "pino";
import { runDaemon } from "../../daemon/daemon.ts";
import type { Clock } from "../../platform/clock.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { action } from "../run-action.ts";
import { parseCount } from "./next.ts";

/**
 * Test hook, like BSCHED_TEST_PAUSE_AFTER_FILES: with BSCHED_TEST_CLOCK_START=<ISO instant> the
 * daemon's clock starts at that instant when the command starts and runs at real speed, so a
 * real-process test can put a slot a few seconds ahead, or days behind, however slowly the
 * process starts. Unset: the system clock.
 */
function daemonClock(): Clock {
  const start = process.env.BSCHED_TEST_CLOCK_START;
  if (!start) return systemClock;
  const at = Date.parse(start);
  if (Number.isNaN(at)) throw new Error(`BSCHED_TEST_CLOCK_START ${JSON.stringify(start)} is not an instant`);
  const t0 = performance.now();
  return { now: () => new Date(at + Math.round(performance.now() - t0)) };
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
