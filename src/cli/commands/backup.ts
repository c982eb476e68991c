import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { BschedError, EXIT } from "../../core/errors.ts";
import type { BackupMode, BackupType } from "../../core/types.ts";
import { backupNowOrViaDaemon } from "../../daemon/control-client.ts";
import { copySummary } from "../../ops/copy.ts";
import { startBackup } from "../../ops/start.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson, printWarning, say } from "../output.ts";
import { action } from "../run-action.ts";
import { cliRuns, follow } from "../runs.ts";
import { copyLine } from "./copy.ts";

export function parseChoice<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  flag: string,
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new BschedError("USAGE", `${flag} ${JSON.stringify(value)} is not allowed`, {
      hint: `use one of: ${allowed.join(", ")}`,
    });
  }
  return value as T;
}

export function registerBackup(program: Command, exit: ExitBox): void {
  program
    .command("backup")
    .description("make one backup of SET now")
    .argument("<set>", "the set id (e.g. data, archive, inout, video)")
    .option("--mode <mode>", "full | incremental (default: the set's mode)")
    .option("--type <type>", "separate | compressed (default: the set's type)")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--no-prune", "do not apply the set's keep policy after this backup")
    .option("--json", "print the result as JSON on stdout")
    .action(
      action(
        exit,
        async (
          setId: string,
          opts: { mode?: string; type?: string; config?: string; json?: boolean; prune?: boolean },
        ) => {
          const mode = parseChoice<BackupMode>(opts.mode, ["full", "incremental"], "--mode");
          const type = parseChoice<BackupType>(opts.type, ["separate", "compressed"], "--type");
          const config = loadConfig(opts.config);
          const set = getSet(config, setId);
          // Through the daemon's queue when one runs for this state folder (never racing its runs).
          const run = startBackup(
            cliRuns(),
            { config, clock: systemClock },
            { set, mode, type, prune: opts.prune !== false },
            backupNowOrViaDaemon,
          );
          const result = await follow(run, (e) => {
            if (e.kind === "warning" || e.kind === "notice") printWarning(e.warning);
            else if (e.kind === "log") say(`bsched: ${e.line}`);
            else if (e.kind === "catalog" || e.kind === "notify") say(`bsched: warning: ${e.message}`);
          });
          const s = result.summary;
          // What the run did is its result (stdout), except with --json, whose stdout is the JSON alone.
          const done = opts.json ? say : out;
          for (const c of result.cleaned) done(`removed the leftover of an interrupted run: ${c}`);
          if (result.pruned) {
            for (const n of result.pruned.removed) done(`removed ${n} (keep policy of set ${set.id})`);
            for (const b of result.pruned.plan.broken)
              say(
                `bsched: warning: ${b.name} cannot be restored (${b.reason}): kept; \`bsched prune ${set.id} --broken\` removes it`,
              );
          }
          const copies = result.copies ?? [];
          if (opts.json) printJson(copies.length > 0 ? { ...s, copies: copies.map(copySummary) } : s);
          else {
            out(
              `${s.name}: ${s.mode} ${s.type} backup of set ${s.set}${s.parent ? ` (parent ${s.parent})` : ""}: ` +
                `${s.files} files, ${formatBytes(s.bytes)}; stored ${s.storedFiles} files, ${formatBytes(s.diskBytes)} on disk`,
            );
            out(`  in ${s.path}`);
            if (s.warnings.length > 0) out(`  ${s.warnings.length} warning(s): see stderr; exit code 3`);
            for (const c of copies) out(`  ${copyLine(c)}`);
          }
          const failed = copies.some((c) => !c.ok);
          return s.warnings.length > 0 || failed ? EXIT.warnings : EXIT.ok;
        },
      ),
    );
}
