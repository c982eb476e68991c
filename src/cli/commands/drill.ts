import type { Command } from "commander";
import type { DrillRecord } from "../../catalog/catalog.ts";
import { getSet, loadConfig } from "../../config/load.ts";
import { EXIT } from "../../core/errors.ts";
import { startDrill } from "../../ops/start.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson, say } from "../output.ts";
import { action } from "../run-action.ts";
import { cliRuns, follow } from "../runs.ts";

export function registerDrill(program: Command, exit: ExitBox): void {
  program
    .command("drill")
    .description(
      "restore drill: restore the newest backup (and a random older kept one) into the scratch folder, check every file, every SQLite database and the drill's check command, time it, record it",
    )
    .argument("<set>", "the set to drill")
    .option(
      "--dest <name>",
      "drill from this place only: `local` (the set's own backup folder) or an entry of destinations:",
    )
    .option("--backup <name>", "restore only this backup (from each place)")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print {set, ok, drills: [...], removed} as JSON on stdout")
    .action(
      action(
        exit,
        async (setId: string, opts: { dest?: string; backup?: string; config?: string; json?: boolean }) => {
          const config = loadConfig(opts.config);
          const set = getSet(config, setId);
          const run = await startDrill(
            cliRuns(),
            { config, clock: systemClock },
            { set, place: opts.dest, backup: opts.backup, trigger: "manual" },
          );
          const r = await follow(run, (e) => {
            if (e.kind === "log") say(`bsched: ${e.line}`);
            else if (e.kind === "catalog" || e.kind === "notify") say(`bsched: warning: ${e.message}`);
          });
          if (opts.json) printJson(r);
          else for (const d of r.drills) for (const line of drillLines(d)) out(line);
          for (const d of r.drills.filter((x) => !x.ok)) {
            say(`bsched: error: ${d.error}`);
            if (d.errorHint) say(`  hint: ${d.errorHint}`);
          }
          return r.ok ? EXIT.ok : EXIT.failed;
        },
      ),
    );
}

/** A drill's result for a person: the verdict, the recovery time, then each check. */
export function drillLines(d: DrillRecord): string[] {
  const what = `${d.backup ?? "(no backup)"} (${d.pick})`;
  const time = d.restoreMs === null ? "" : ` restored in ${(d.restoreMs / 1000).toFixed(1)} s,`;
  const head = d.ok
    ? `drill ${d.set} from ${d.destination}: ${what}: PROVEN RESTORABLE:${time} ${d.files} files, ${formatBytes(d.bytes)}`
    : `drill ${d.set} from ${d.destination}: ${what}: FAILED [${d.errorCode}]${time ? `${time.slice(0, -1)}` : ""}`;
  return [head, ...d.checks.map((c) => `  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`)];
}
