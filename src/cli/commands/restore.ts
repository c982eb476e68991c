import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { BschedError, EXIT } from "../../core/errors.ts";
import { closeQuietly, describeDestination, openNamedDestination } from "../../destination/by-name.ts";
import type { Destination } from "../../destination/destination.ts";
import type { RestoreSource } from "../../ops/restore.ts";
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
  dest?: string;
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
    .option(
      "--dest <name>",
      "with SET: restore from this destination (an entry of destinations:, e.g. a copy; `folder`: the set's own); needs no catalog nor local backups",
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
        if (opts.from && opts.dest)
          throw new BschedError("USAGE", "--dest goes with a SET; --from reads the path given");
        let source: RestoreSource;
        let dest: Destination | undefined;
        if (opts.from) source = { from: opts.from };
        else {
          const config = loadConfig(opts.config);
          const set = getSet(config, setId as string);
          source = { set, backup: opts.backup };
          dest = await openNamedDestination(config, opts.dest, set);
        }
        const run = startRestore(cliRuns(), {}, source, {
          to: opts.to as string,
          overwrite: opts.overwrite,
          destination: dest,
        });
        const r = await follow(run, (e) => {
          if (e.kind === "log") say(`bsched: ${e.line}`);
        }).finally(() => closeQuietly(dest));
        const { target, chain: names, backup, ...counts } = r;
        if (opts.json) {
          printJson({
            backup,
            chain: names,
            target,
            ...counts,
            ...(dest === undefined ? {} : { destination: dest.name, where: dest.where }),
          });
        } else {
          out(
            `restored ${backup} (chain: ${names.join(" → ")})${dest === undefined ? "" : ` from ${describeDestination(dest)}`} into ${target}`,
          );
          out(
            `  ${counts.files} files, ${counts.dirs} folders, ${counts.symlinks} symlinks, ${formatBytes(counts.bytes)}`,
          );
        }
        // A restore that found damage throws (RESTORE_MISMATCH) before anything above is printed.
        return EXIT.ok;
      }),
    );
}
