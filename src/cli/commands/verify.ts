import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { BschedError, EXIT } from "../../core/errors.ts";
import { startVerify } from "../../ops/start.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson, say } from "../output.ts";
import { action } from "../run-action.ts";
import { cliRuns, follow } from "../runs.ts";

export function registerVerify(program: Command, exit: ExitBox): void {
  program
    .command("verify")
    .description("re-read and re-hash backups; name every damaged or missing file")
    .argument("[set]", "verify every backup of this set")
    .option("--backup <name>", "with SET: only the chain of this backup")
    .option(
      "--from <path>",
      "with no config: the chain of this backup folder, or of a self-extracting .sh file (also one copied alone)",
    )
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print the result as JSON on stdout")
    .action(
      action(
        exit,
        async (
          setId: string | undefined,
          opts: { backup?: string; from?: string; config?: string; json?: boolean },
        ) => {
          if (!setId && !opts.from) throw new BschedError("USAGE", "verify needs a SET or --from PATH");
          if (setId && opts.from) throw new BschedError("USAGE", "give a SET or --from PATH, not both");
          const target = opts.from
            ? { from: opts.from }
            : { set: getSet(loadConfig(opts.config), setId as string), backup: opts.backup };
          const r = await follow(startVerify(cliRuns(), {}, target));
          if (opts.json) printJson({ ok: r.problems.length === 0, ...r });
          // The report is the result: stdout (`verify data > report.txt`), unless stdout is the JSON.
          const report = opts.json ? say : out;
          for (const p of r.problems)
            report(`bsched: damage: ${p.backup}${p.path ? `: ${p.path}` : ""}: ${p.problem}`);
          report(
            `verified ${r.backups} backup(s), ${r.files} files, ${formatBytes(r.bytes)}: ` +
              (r.problems.length === 0 ? "no damage found" : `${r.problems.length} problem(s)`),
          );
          return r.problems.length === 0 ? EXIT.ok : EXIT.failed;
        },
      ),
    );
}
