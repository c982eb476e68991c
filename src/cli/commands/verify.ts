import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { BschedError, EXIT } from "../../core/errors.ts";
import { closeQuietly, describeDestination, openNamedDestination } from "../../destination/by-name.ts";
import type { Destination } from "../../destination/destination.ts";
import { startVerify } from "../../ops/start.ts";
import type { VerifyTarget } from "../../ops/verify.ts";
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
    .option(
      "--dest <name>",
      "with SET: the backups on this destination (an entry of destinations:, or `folder`) instead of the set's own folder",
    )
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print the result as JSON on stdout")
    .action(
      action(
        exit,
        async (
          setId: string | undefined,
          opts: { backup?: string; from?: string; dest?: string; config?: string; json?: boolean },
        ) => {
          if (!setId && !opts.from) throw new BschedError("USAGE", "verify needs a SET or --from PATH");
          if (setId && opts.from) throw new BschedError("USAGE", "give a SET or --from PATH, not both");
          if (opts.from && opts.dest)
            throw new BschedError("USAGE", "--dest goes with a SET; --from reads the path given");
          let target: VerifyTarget;
          let dest: Destination | undefined;
          if (opts.from) target = { from: opts.from };
          else {
            const config = loadConfig(opts.config);
            const set = getSet(config, setId as string);
            target = { set, backup: opts.backup };
            dest = await openNamedDestination(config, opts.dest, set);
          }
          const r = await follow(startVerify(cliRuns(), {}, target, { destination: dest })).finally(() =>
            closeQuietly(dest),
          );
          if (dest !== undefined) say(`bsched: verified on ${describeDestination(dest)}`);
          if (opts.json)
            printJson({
              ok: r.problems.length === 0,
              ...r,
              ...(dest === undefined ? {} : { destination: dest.name, where: dest.where }),
            });
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
