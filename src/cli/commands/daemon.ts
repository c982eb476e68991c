import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { pino } from "pino";
import { loadConfig } from "../../config/load.ts";
import { MASK, secretLogPaths } from "../../config/secret-keys.ts";
import { runDaemon } from "../../daemon/process.ts";
import { systemClock } from "../../platform/clock.ts";
import { logDestination } from "../../platform/log-file.ts";
import { parseCount } from "../args.ts";
import type { ExitBox } from "../main.ts";
import { action } from "../run-action.ts";

export function registerDaemon(program: Command, exit: ExitBox): void {
  program
    .command("daemon")
    .description("run the automatic sets on their schedules until SIGTERM/SIGINT (SIGHUP reloads the config)")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--log <file>", "append log lines to this file instead of server.log.file or stderr")
    .option(
      "--stop-timeout <seconds>",
      "on SIGTERM, wait this long for a running backup, then abort it",
      "300",
    )
    .action(
      action(exit, async (opts: { config?: string; log?: string; stopTimeout?: string }) => {
        const grace = parseCount(opts.stopTimeout, "--stop-timeout", 300);
        // server.log (file, level, format, rotation) is read once here: it applies from the next
        // start. Warnings are the daemon's to log (it reads the config again at its start).
        const conf = loadConfig(opts.config, () => undefined).log;
        const file = opts.log ? path.resolve(opts.log) : conf.file;
        if (file) fs.mkdirSync(path.dirname(file), { recursive: true });
        const log = pino(
          {
            base: { pid: process.pid },
            level: conf.level,
            timestamp: pino.stdTimeFunctions.isoTime,
            // A secret field in anything logged is masked (docs/design.md "Secrets").
            redact: { paths: [...secretLogPaths()], censor: MASK },
          },
          logDestination({ ...conf, file }),
        );
        return runDaemon({ configFile: opts.config, clock: systemClock, log, stopGraceMs: grace * 1000 });
      }),
    );
}
