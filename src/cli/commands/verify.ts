import path from "node:path";
import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { BschedError, EXIT } from "../../core/errors.ts";
import { listFolder } from "../../destination/local/folder.ts";
import { locateForSet, locateFromPath } from "../../restore/locate.ts";
import { verifyBackups } from "../../verify/verify.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, printJson, say } from "../output.ts";
import { terminalProgress } from "../progress.ts";
import { action } from "../run-action.ts";

export function registerVerify(program: Command, exit: ExitBox): void {
  program
    .command("verify")
    .description("re-read and re-hash backups; name every damaged or missing file")
    .argument("[set]", "verify every backup of this set")
    .option("--backup <name>", "with SET: only the chain of this backup")
    .option("--from <path>", "verify the chain of this backup folder, with no config")
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
          let folder: string;
          let names: string[];
          let set: string | undefined;
          if (opts.from) {
            try {
              const located = await locateFromPath(opts.from);
              folder = located.folder;
              names = located.chain.map((l) => l.name);
            } catch (e) {
              // A broken chain is damage to report, not a reason to stop: verify what is there.
              if (!(e instanceof BschedError) || e.code === "BACKUP_NOT_FOUND") throw e;
              const abs = path.resolve(opts.from.replace(/\/+$/, ""));
              folder = path.dirname(abs);
              names = [path.basename(abs)];
            }
          } else {
            const cfg = getSet(loadConfig(opts.config), setId as string);
            folder = cfg.folder;
            set = cfg.id;
            if (opts.backup) names = (await locateForSet(cfg, opts.backup)).chain.map((l) => l.name);
            else {
              const listing = await listFolder(cfg.folder, cfg.letter, cfg.id);
              names = [...listing.backups.map((b) => b.name), ...listing.incomplete.map((i) => i.name)];
            }
          }
          const progress = terminalProgress();
          const r = await verifyBackups(folder, names, progress.onProgress, { set }).finally(() =>
            progress.end(),
          );
          if (opts.json) printJson({ ok: r.problems.length === 0, ...r });
          for (const p of r.problems)
            say(`bsched: damage: ${p.backup}${p.path ? `: ${p.path}` : ""}: ${p.problem}`);
          say(
            `verified ${r.backups} backup(s), ${r.files} files, ${formatBytes(r.bytes)}: ` +
              (r.problems.length === 0 ? "no damage found" : `${r.problems.length} problem(s)`),
          );
          return r.problems.length === 0 ? EXIT.ok : EXIT.failed;
        },
      ),
    );
}
