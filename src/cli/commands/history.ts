import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { history } from "../../ops/history.ts";
import { systemClock } from "../../platform/clock.ts";
import { parseCount } from "../args.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson } from "../output.ts";
import { action } from "../run-action.ts";

export function registerHistory(program: Command, exit: ExitBox): void {
  program
    .command("history")
    .description("past runs, newest first (from the catalog in server.state)")
    .argument("[set]", "only this set")
    .option("--limit <n>", "at most this many runs", "50")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option(
      "--json",
      "print an array of {id, set, planned, trigger, startedAt, finishedAt, status, warnings, files, bytes, backup, error, errorCode, errorHint, slots, pid, host, pidStart}",
    )
    .action(
      action(
        exit,
        async (setId: string | undefined, opts: { limit?: string; config?: string; json?: boolean }) => {
          const limit = parseCount(opts.limit, "--limit", 50);
          const config = loadConfig(opts.config);
          if (setId) getSet(config, setId);
          const runs = history({ config, clock: systemClock }, { set: setId, limit });
          if (opts.json) {
            printJson(runs);
            return 0;
          }
          if (runs.length === 0) out("no runs recorded yet");
          for (const r of runs) {
            const when = r.startedAt ?? r.finishedAt ?? "";
            const what = r.backup ? `${r.backup} ${r.files} files ${formatBytes(r.bytes)}` : "";
            const slots = r.slots > 1 ? ` (${r.slots} slots)` : "";
            // A failed run says what failed, its code and the fix, as the command itself did.
            const code = r.errorCode ? `[${r.errorCode}] ` : "";
            process.stdout.write(
              `${when}  ${r.set}  ${r.trigger}${slots}  ${r.status}  ${what}${r.error ? `  ${code}${r.error}` : ""}\n`,
            );
            if (r.errorHint) process.stdout.write(`    hint: ${r.errorHint}\n`);
          }
          return 0;
        },
      ),
    );
}
