import type { Command } from "commander";
import { chainLength, plannedModes } from "../../backup/cadence.ts";
import { getSet, loadConfig } from "../../config/load.ts";
import { BschedError } from "../../core/errors.ts";
import { listFolder } from "../../destination/local/folder.ts";
import { describeSchedule, nextRuns } from "../../schedule/schedule.ts";
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
          const from = opts.from ? parseInstant(opts.from, "--from") : new Date();
          const config = loadConfig(opts.config);
          const sets = setId
            ? [getSet(config, setId)]
            : [...config.sets.values()].filter((s) => s.automatic && s.frequency !== "now");
          const runs = new Map(sets.map((s) => [s.id, nextRuns(s, from, config.timezone, count)]));
          // Full or incremental: the set's cadence from its current chain (src/backup/cadence.ts).
          const chains = new Map<string, number>();
          for (const s of sets)
            chains.set(s.id, await chainLength((await listFolder(s.folder, s.letter, s.id)).backups));
          const planned = (id: string) => {
            const r = runs.get(id) ?? [];
            const set = getSet(config, id);
            const modes = plannedModes(set, chains.get(id) ?? 0, r.length);
            return r.map((d, i) => ({ at: d, mode: modes[i] ?? "full" }));
          };
          if (opts.json) {
            const iso = (id: string) => planned(id).map((p) => ({ at: p.at.toISOString(), mode: p.mode }));
            if (setId) printJson(iso(setId));
            else printJson(Object.fromEntries(sets.map((s) => [s.id, iso(s.id)])));
            return 0;
          }
          if (sets.length === 0) out("no automatic sets: nothing is scheduled");
          for (const s of sets) {
            const how = describeSchedule(s);
            const cadence =
              s.mode === "incremental"
                ? `; incremental, a full every ${s.fullEvery} backups (chain now ${chains.get(s.id) ?? 0})`
                : "";
            process.stdout.write(
              `${s.id}: ${how}${cadence}${s.automatic ? "" : " (automatic: false: the daemon does not run it)"}\n`,
            );
            for (const p of planned(s.id))
              process.stdout.write(
                `  ${localTime(p.at, config.timezone)}  (${p.at.toISOString()})  ${p.mode}\n`,
              );
          }
          return 0;
        },
      ),
    );
}
