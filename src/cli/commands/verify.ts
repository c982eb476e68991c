import fs from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { BschedError, EXIT } from "../../core/errors.ts";
import { listFolder } from "../../destination/local/folder.ts";
import { locateForSet, locateFromPath } from "../../restore/locate.ts";
import { type VerifyProblem, verifyBackups } from "../../verify/verify.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson, say } from "../output.ts";
import { terminalProgress } from "../progress.ts";
import { action } from "../run-action.ts";

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
          let folder: string;
          let names: string[];
          let set: string | undefined;
          let unreadable: VerifyProblem | undefined;
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
              // A self-extracting file that cannot be read: say what is damaged in it, not that a
              // manifest is missing (a lone file has none beside it to find).
              // A FIFO, socket or device given as the file: named as such (it is never opened).
              if (e.code === "UNSAFE_PATH") unreadable = { backup: path.basename(abs), problem: e.message };
              else if ((await fs.stat(abs)).isFile()) unreadable = await loneFileProblem(abs, e);
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
          const r = unreadable
            ? { backups: 1, files: 0, bytes: 0, problems: [unreadable] }
            : await verifyBackups(folder, names, progress.onProgress, { set }).finally(() => progress.end());
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

/** The damage of a self-extracting file whose manifest could not be read (`error`: why not). */
async function loneFileProblem(file: string, error: BschedError): Promise<VerifyProblem> {
  // Loaded only here: tar's code is not needed to verify backup folders.
  const { payloadDamage } = await import("../../format/compressed/reader.ts");
  const damage = await payloadDamage(file);
  return {
    backup: path.basename(file),
    problem: damage ?? error.message.replace(`${file}: `, ""),
  };
}
