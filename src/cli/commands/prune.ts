import type { Command } from "commander";
import { openCatalog } from "../../catalog/reconcile.ts";
import { getSet, loadConfig } from "../../config/load.ts";
import { systemClock } from "../../platform/clock.ts";
import { pruneSet } from "../../retention/prune.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson } from "../output.ts";
import { action } from "../run-action.ts";

export function registerPrune(program: Command, exit: ExitBox): void {
  program
    .command("prune")
    .description(
      "apply the set's keep policy: delete the backups it does not keep (never a chain a kept one needs)",
    )
    .argument("<set>", "the set id")
    .option("--dry-run", "only show what would be kept and deleted")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print {set, dryRun, keep, remove, removed, reasons, freedBytes} as JSON")
    .action(
      action(exit, async (setId: string, opts: { dryRun?: boolean; config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const set = getSet(config, setId);
        const catalog = opts.dryRun ? undefined : openCatalog(config);
        try {
          const r = await pruneSet(set, {
            timezone: config.timezone,
            clock: systemClock,
            dryRun: opts.dryRun === true,
            catalog,
          });
          if (opts.json) {
            printJson({
              set: r.set,
              dryRun: r.dryRun,
              keep: r.plan.keep,
              remove: r.plan.remove,
              removed: r.removed,
              reasons: r.plan.reasons,
              freedBytes: r.freedBytes,
            });
            return 0;
          }
          for (const name of r.plan.keep)
            out(`keep    ${name}  (${(r.plan.reasons[name] ?? []).join(", ")})`);
          for (const name of r.plan.remove) out(`${r.dryRun ? "would delete" : "deleted"} ${name}`);
          if (r.dryRun) out(`dry run: ${r.plan.remove.length} backup(s) would be deleted`);
          else out(`${r.removed.length} backup(s) deleted, ${formatBytes(r.freedBytes)} freed`);
          return 0;
        } finally {
          catalog?.close();
        }
      }),
    );
}
