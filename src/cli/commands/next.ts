import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { next, type PlannedRuns } from "../../ops/next.ts";
import { systemClock } from "../../platform/clock.ts";
import { describeSchedule } from "../../schedule/schedule.ts";
import { parseCount, parseInstant } from "../args.ts";
import { localTime } from "../local-time.ts";
import type { ExitBox } from "../main.ts";
import { out, printJson } from "../output.ts";
import { action } from "../run-action.ts";

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
