import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import {
  closeQuietly,
  describeDestination,
  destinationSpecNamed,
  openNamedDestination,
  withKeepOf,
} from "../../destination/by-name.ts";
import { prune } from "../../ops/prune.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson, say } from "../output.ts";
import { action } from "../run-action.ts";

export function registerPrune(program: Command, exit: ExitBox): void {
  program
    .command("prune")
    .description(
      "apply the set's keep policy: delete the backups it does not keep (never a chain a kept one needs)",
    )
    .argument("<set>", "the set id")
    .option("--dry-run", "only show what would be kept and deleted")
    .option(
      "--broken",
      "delete only the backups that cannot be restored (never a restorable one), saying why",
    )
    .option(
      "--dest <name>",
      "prune the backups on this destination (its own keep, else the set's) instead of the set's own folder",
    )
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print {set, dryRun, keep, remove, removed, reasons, broken, freedBytes} as JSON")
    .action(
      action(
        exit,
        async (
          setId: string,
          opts: { dryRun?: boolean; broken?: boolean; dest?: string; config?: string; json?: boolean },
        ) => {
          const config = loadConfig(opts.config);
          const own = getSet(config, setId);
          const dest = await openNamedDestination(config, opts.dest, own);
          // A destination's own keep overrides the set's there (issue 11), as after a copy.
          const set =
            opts.dest === undefined ? own : withKeepOf(own, destinationSpecNamed(config, opts.dest));
          if (dest !== undefined) say(`bsched: pruning on ${describeDestination(dest)}`);
          const r = await prune({ config, clock: systemClock }, set, {
            dryRun: opts.dryRun,
            brokenOnly: opts.broken,
            destination: dest,
          }).finally(() => closeQuietly(dest));
          const why = new Map(r.plan.broken.map((b) => [b.name, b.reason]));
          if (opts.json) {
            printJson({
              set: r.set,
              dryRun: r.dryRun,
              keep: r.plan.keep,
              remove: r.plan.remove,
              removed: r.removed,
              reasons: r.plan.reasons,
              broken: r.plan.broken,
              freedBytes: r.freedBytes,
            });
            return 0;
          }
          for (const name of r.plan.keep)
            out(`keep    ${name}  (${(r.plan.reasons[name] ?? []).join(", ")})`);
          for (const name of r.plan.remove) {
            const cause = why.get(name);
            out(
              `${r.dryRun ? "would delete" : "deleted"} ${name}${cause ? `  (cannot be restored: ${cause})` : ""}`,
            );
          }
          if (!r.brokenOnly && r.plan.broken.length > 0) {
            for (const b of r.plan.broken) out(`broken  ${b.name}  (kept, cannot be restored: ${b.reason})`);
            say(
              `bsched: warning: ${r.plan.broken.length} backup(s) cannot be restored and do not count toward keep; ` +
                `remove them with \`bsched prune ${r.set} --broken\``,
            );
          }
          if (r.brokenOnly) {
            // Shown as broken but never deleted: a whole backup of another set (see prune.ts).
            const removing = new Set(r.plan.remove);
            for (const b of r.plan.broken.filter((x) => !removing.has(x.name)))
              out(`kept    ${b.name}  (${b.reason}; move or delete it by hand if unwanted)`);
          }
          if (r.dryRun) out(`dry run: ${r.plan.remove.length} backup(s) would be deleted`);
          else out(`${r.removed.length} backup(s) deleted, ${formatBytes(r.freedBytes)} freed`);
          return 0;
        },
      ),
    );
}
