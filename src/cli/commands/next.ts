import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { BschedError } from "../../core/errors.ts";
import { next, type PlannedRuns } from "../../ops/next.ts";
import { systemClock } from "../../platform/clock.ts";
import { describeSchedule } from "../../schedule/schedule.ts";
import { zonedParts } from "../../snapshot/naming.ts";
import type { ExitBox } from "../main.ts";
import { out, printJson } from "../output.ts";
import { action } from "../run-action.ts";

export function parseInstant(value: string, flag: string): Date {
  const t = Date.parse(value);
  // A time without an offset would be read in the machine's zone: ambiguous, so refused.
  if (Number.isNaN(t) || !/(Z|[+-]\d\d:?\d\d)$/i.test(value.trim())) {
    throw new BschedError("USAGE", `${flag} ${JSON.stringify(value)} is not an ISO-8601 instant`, {
      hint: 'give a date, time and offset, e.g. "2026-03-29T00:00:00Z" or "2026-03-29T01:00:00+01:00"',
    });
  }
  return new Date(t);
}

export function parseCount(value: string | undefined, flag: string, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) {
    throw new BschedError("USAGE", `${flag} ${JSON.stringify(value)} is not a whole number from 1 to 10000`, {
      hint: `e.g. ${flag} 5`,
    });
  }
  return n;
}

/** "2026-03-29 03:00 CEST"-style local rendering for people. */
export function localTime(d: Date, tz: string): string {
  const p = zonedParts(d, tz);
  const zone =
    new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "short" })
      .formatToParts(d)
      .find((x) => x.type === "timeZoneName")?.value ?? tz;
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${zone}`;
}

export function registerNext(program: Command, exit: ExitBox): void {
  program
    .command("next")
    .description("show the next scheduled run times (in server.timezone)")
    .argument("[set]", "only this set (default: every automatic set)")
    .option("--from <time>", "count from this ISO-8601 instant instead of now")
    .option("--count <n>", "how many run times per set", "5")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option(
      "--json",
      "print [{at, mode}] (at: an ISO-8601 instant; mode: full | incremental) for one SET, else an object {set: [...]} of the automatic sets",
    )
    .action(
      action(
        exit,
        async (
          setId: string | undefined,
          opts: { from?: string; count?: string; config?: string; json?: boolean },
        ) => {
          const count = parseCount(opts.count, "--count", 5);
          const from = opts.from ? parseInstant(opts.from, "--from") : undefined;
          const config = loadConfig(opts.config);
          const planned = await next(
            { config, clock: systemClock },
            { set: setId ? getSet(config, setId) : undefined, from, count },
          );
          if (opts.json) {
            const iso = (p: PlannedRuns) => p.runs.map((r) => ({ at: r.at.toISOString(), mode: r.mode }));
            if (setId) printJson(iso(planned[0] as PlannedRuns));
            else printJson(Object.fromEntries(planned.map((p) => [p.set.id, iso(p)])));
            return 0;
          }
          if (planned.length === 0) out("no automatic sets: nothing is scheduled");
          for (const { set: s, chain, runs } of planned) {
            const how = describeSchedule(s);
            const cadence =
              s.mode === "incremental"
                ? `; incremental, a full every ${s.fullEvery} backups (chain now ${chain})`
                : "";
            process.stdout.write(
              `${s.id}: ${how}${cadence}${s.automatic ? "" : " (automatic: false: the daemon does not run it)"}\n`,
            );
            for (const p of runs)
              process.stdout.write(
                `  ${localTime(p.at, config.timezone)}  (${p.at.toISOString()})  ${p.mode}\n`,
              );
          }
          return 0;
        },
      ),
    );
}
