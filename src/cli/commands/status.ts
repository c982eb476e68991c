import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import { status } from "../../ops/status.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, printJson } from "../output.ts";
import { action } from "../run-action.ts";
import { localTime } from "./next.ts";

export function registerStatus(program: Command, exit: ExitBox): void {
  program
    .command("status")
    .description("per set: next run, last run and its result, backups count and size; and the daemon")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print {daemon, sets: [...]} as JSON")
    .action(
      action(exit, async (opts: { config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const { daemon, sets } = await status({ config, clock: systemClock });
        if (opts.json) {
          printJson({ daemon, sets });
          return 0;
        }
        const out = (l: string) => process.stdout.write(`${l}\n`);
        out(
          daemon.running
            ? `daemon: running (pid ${daemon.pid} on ${daemon.host}, since ${daemon.since})`
            : "daemon: not running",
        );
        for (const s of sets) {
          out(`${s.set}:`);
          out(
            `  next run:  ${s.nextRun ? localTime(new Date(s.nextRun), config.timezone) : "none (on demand only)"}`,
          );
          const l = s.lastRun;
          out(
            `  last run:  ${l ? `${l.status}${l.finishedAt ? ` at ${localTime(new Date(l.finishedAt), config.timezone)}` : ""}${l.backup ? ` (${l.backup})` : ""}${l.error ? `: ${l.error}` : ""}` : "never"}`,
          );
          out(`  backups:   ${s.backups.count}, ${formatBytes(s.backups.diskBytes)} on disk`);
          const c = s.chain;
          if (c) {
            const when = c.nextFullAt
              ? `, planned ${localTime(new Date(c.nextFullAt), config.timezone)}`
              : "";
            const which =
              c.nextFullIn === 1 ? "the next backup" : `the ${ordinal(c.nextFullIn)} backup from now`;
            out(
              `  chain:     ${c.length} of ${c.fullEvery} (a full every ${c.fullEvery}); next full: ${which}${when}`,
            );
          }
          if (s.backups.broken > 0)
            out(
              `  warning:   ${s.backups.broken} backup(s) cannot be restored: see \`bsched list ${s.set}\`, ` +
                `remove them with \`bsched prune ${s.set} --broken\``,
            );
        }
        return 0;
      }),
    );
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${suffix}`;
}
