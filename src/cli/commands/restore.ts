import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { BschedError, EXIT } from "../../core/errors.ts";
import { startRestore } from "../../ops/start.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson, say } from "../output.ts";
import { action } from "../run-action.ts";
import { cliRuns, follow } from "../runs.ts";

interface RestoreFlags {
  to?: string;
  backup?: string;
  from?: string;
  overwrite?: boolean;
  config?: string;
  json?: boolean;
}

export function registerRestore(program: Command, exit: ExitBox): void {
  program
    .command("restore")
    .description("restore a backup (its whole chain, oldest first) into a folder")
    .argument("[set]", "the set whose backup to restore (not with --from)")
    .requiredOption("--to <dir>", "the folder to restore into (must be empty unless --overwrite)")
    .option("--backup <name>", "the backup to restore (default: the newest)")
    .option(
      "--from <path>",
      "with no config: a backup folder, or a self-extracting .sh file (also one copied alone); its chain is found beside it",
    )
    .option("--overwrite", "restore into a non-empty folder, replacing what the backup holds")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print the result as JSON on stdout")
    .action(
      action(exit, async (setId: string | undefined, opts: RestoreFlags) => {
        if (!setId && !opts.from)
          throw new BschedError("USAGE", "restore needs a SET or --from PATH", {
            hint: "bsched restore data --to /tmp/out",
          });
        if (setId && opts.from) throw new BschedError("USAGE", "give a SET or --from PATH, not both");
        if (opts.from && opts.backup)
          throw new BschedError(
            "USAGE",
            "--backup goes with a SET; with --from, name the backup folder itself",
          );
        const source = opts.from
          ? { from: opts.from }
          : { set: getSet(loadConfig(opts.config), setId as string), backup: opts.backup };
        const run = startRestore(cliRuns(), {}, source, { to: opts.to as string, overwrite: opts.overwrite });
        const r = await follow(run, (e) => {
          if (e.kind === "log") say(`bsched: ${e.line}`);
        });
        const { target, chain: names, backup, ...counts } = r;
        if (opts.json) {
          printJson({ backup, chain: names, target, ...counts });
        } else {
          out(`restored ${backup} (chain: ${names.join(" → ")}) into ${target}`);
          out(
            `  ${counts.files} files, ${counts.dirs} folders, ${counts.symlinks} symlinks, ${formatBytes(counts.bytes)}`,
          );
        }
        // A restore that found damage throws (RESTORE_MISMATCH) before anything above is printed.
        return EXIT.ok;
      }),
    );
}
