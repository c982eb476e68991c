import type { Command } from "commander";
import { destination, pino } from "pino";
import { MASK, SECRET_LOG_PATHS } from "../../config/secret-keys.ts";
import { runDaemon } from "../../daemon/process.ts";
import { systemClock } from "../../platform/clock.ts";
import { parseCount } from "../args.ts";
import type { ExitBox } from "../main.ts";
import { action } from "../run-action.ts";

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
          {
            base: { pid: process.pid },
            timestamp: pino.stdTimeFunctions.isoTime,
            // A secret field in anything logged is masked (docs/design.md "Secrets").
            redact: { paths: [...SECRET_LOG_PATHS], censor: MASK },
          },
          destination({ dest: opts.log ?? 2, sync: true, mkdir: true, append: true }),
        );
        return runDaemon({ configFile: opts.config, clock: systemClock, log, stopGraceMs: grace * 1000 });
      }),
    );
}
