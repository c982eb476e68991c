import type { Command } from "commander";
import { interruptGoneRuns } from "../../catalog/interrupted.ts";
import { openCatalog, rebuildCatalog, reconcile } from "../../catalog/reconcile.ts";
import { loadConfig } from "../../config/load.ts";
import { lockState } from "../../daemon/daemon.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { out, printJson } from "../output.ts";
import { action } from "../run-action.ts";

export function registerCatalog(program: Command, exit: ExitBox): void {
  const cmd = program.command("catalog").description("the run history and backup catalog in server.state");
  cmd
    .command("rebuild")
    .description(
      "recreate the catalog from the backup folders (the old file is kept aside); refused while a daemon runs",
    )
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print {file, backups, movedAside} as JSON")
    .action(
      action(exit, async (opts: { config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const lock = await lockState(config, systemClock);
        try {
          const r = await rebuildCatalog(config, systemClock.now());
          if (opts.json) printJson({ file: r.file, backups: r.backups, movedAside: r.movedAside ?? null });
          else {
            out(`catalog ${r.file} rebuilt from the backup folders: ${r.backups} backup(s)`);
            if (r.movedAside) out(`  the previous file is kept as ${r.movedAside}`);
          }
          return 0;
        } finally {
          await lock.release();
        }
      }),
    );
  cmd
    .command("check")
    .description(
      "compare the catalog with the backup folders and repair it; record runs whose process is gone as interrupted",
    )
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print the repairs as JSON")
    .action(
      action(exit, async (opts: { config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const catalog = openCatalog(config);
        try {
          const gone = interruptGoneRuns(catalog, systemClock.now(), { legacy: true });
          const repairs = (await reconcile(catalog, config)).map((r) => ({
            ...r,
            // Runs of the set whose process had ended without recording a result: now `interrupted`.
            interrupted: gone.filter((g) => g.set === r.set).map((g) => ({ id: g.id, reason: g.error })),
          }));
          if (opts.json) printJson(repairs);
          else
            for (const r of repairs) {
              out(
                `${r.set}: ${r.added.length} added, ${r.removed.length} removed, ${r.updated.length} updated` +
                  (r.added.length + r.removed.length + r.updated.length === 0
                    ? " (in agreement)"
                    : " (repaired)"),
              );
              for (const i of r.interrupted) out(`  run ${i.id} recorded as interrupted: ${i.reason}`);
            }
          return 0;
        } finally {
          catalog.close();
        }
      }),
    );
}
