import path from "node:path";
import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { BschedError, EXIT } from "../../core/errors.ts";
import { fromOsError } from "../../platform/os-errors.ts";
import { locateForSet, locateFromPath } from "../../restore/locate.ts";
import { type RestoreFailure, restoreState } from "../../restore/restore.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson, say } from "../output.ts";
import { terminalProgress } from "../progress.ts";
import { action } from "../run-action.ts";

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
        const located = opts.from
          ? await locateFromPath(opts.from)
          : await locateForSet(getSet(loadConfig(opts.config), setId as string), opts.backup);
        const target = path.resolve(opts.to as string);
        const progress = terminalProgress();
        const r = await restoreState({
          chain: located.chain,
          manifest: located.manifest,
          target,
          overwrite: opts.overwrite,
          onProgress: progress.onProgress,
        })
          .catch((e: RestoreFailure) => {
            // Before the error itself: what the failed restore left in --to.
            progress.end();
            if (e?.targetState) say(`bsched: ${e.targetState}`);
            // A full or read-only target: name it (a write() error carries no path).
            throw fromOsError(e, { path: target, doing: `restore into ${target}` });
          })
          .finally(() => progress.end());
        const names = located.chain.map((l) => l.name);
        if (opts.json) {
          printJson({ backup: located.manifest.name, chain: names, target, ...r });
        } else {
          out(`restored ${located.manifest.name} (chain: ${names.join(" → ")}) into ${target}`);
          out(`  ${r.files} files, ${r.dirs} folders, ${r.symlinks} symlinks, ${formatBytes(r.bytes)}`);
        }
        // A restore that found damage throws (RESTORE_MISMATCH) before anything above is printed.
        return EXIT.ok;
      }),
    );
}
