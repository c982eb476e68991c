import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { type CopyOutcome, DEFAULT_RETRY } from "../../copy/copy-set.ts";
import { BschedError, EXIT } from "../../core/errors.ts";
import { copySummary, startCopy } from "../../ops/copy.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { out, printJson, printWarning, say } from "../output.ts";
import { action } from "../run-action.ts";
import { cliRuns, follow } from "../runs.ts";

/** One destination's outcome for a person: what was sent, or why not and the fix. */
export function copyLine(c: CopyOutcome): string {
  if (!c.ok) return `copy to ${c.destination}: FAILED (${c.code ?? "COPY_FAILED"}): see stderr`;
  const sent = c.copied.length === 0 ? "already level" : `sent ${c.copied.length} (${c.copied.join(", ")})`;
  return `copy to ${c.destination}: ${sent}; newest there ${c.newest ?? "(none)"}`;
}

export function registerCopy(program: Command, exit: ExitBox): void {
  program
    .command("copy")
    .description("send SET's backups its destinations lack (oldest first), check and record them")
    .argument("<set>", "the set id (e.g. data)")
    .option(
      "--to <dest>",
      "only this destination (any name in destinations:; repeat for several); default the set's copies",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      "--attempts <n>",
      "tries per destination before it is reported failed (default 3, 5 s then 30 s apart)",
    )
    .option("--no-prune", "do not apply each destination's keep policy after its copies")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print the result as JSON on stdout")
    .action(
      action(
        exit,
        async (
          setId: string,
          opts: {
            to?: string[];
            attempts?: string;
            prune?: boolean;
            config?: string;
            json?: boolean;
          },
        ) => {
          if (opts.attempts !== undefined && !/^[1-9][0-9]?$/.test(opts.attempts))
            throw new BschedError("USAGE", `--attempts ${JSON.stringify(opts.attempts)} is not allowed`, {
              hint: "a whole number from 1 to 99",
            });
          const config = loadConfig(opts.config);
          const set = getSet(config, setId);
          const run = startCopy(
            cliRuns(),
            { config, clock: systemClock },
            {
              set,
              to: opts.to,
              prune: opts.prune !== false,
              ...(opts.attempts === undefined
                ? {}
                : { retry: { ...DEFAULT_RETRY, attempts: Number(opts.attempts) } }),
            },
          );
          const r = await follow(run, (e) => {
            if (e.kind === "warning" || e.kind === "notice") printWarning(e.warning);
            else if (e.kind === "log") say(`bsched: ${e.line}`);
            else if (e.kind === "catalog" || e.kind === "notify") say(`bsched: warning: ${e.message}`);
          });
          const done = opts.json ? say : out;
          for (const c of r.copies) {
            for (const s of c.skipped)
              say(`bsched: warning: ${s.name} not sent to ${c.destination}: ${s.reason}`);
            for (const n of c.pruned?.removed ?? [])
              done(`removed ${n} from ${c.destination} (keep policy of ${c.destination})`);
          }
          if (opts.json) printJson({ set: r.set, copies: r.copies.map(copySummary) });
          else {
            if (r.copies.length === 0)
              out(`set ${set.id} has no copies: add sets.${set.id}.copies, or use --to DEST`);
            for (const c of r.copies) out(copyLine(c));
          }
          return r.copies.some((c) => !c.ok) ? EXIT.warnings : EXIT.ok;
        },
      ),
    );
}
