import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { list } from "../../ops/list.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson, say } from "../output.ts";
import { action } from "../run-action.ts";

export function registerList(program: Command, exit: ExitBox): void {
  program
    .command("list")
    .description(
      "list the backups, oldest first, each with its state: ok or broken (cannot be restored) and why",
    )
    .argument("[set]", "only this set")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", 'print an array of backups as JSON on stdout (state: "ok" or "broken", reason)')
    .action(
      action(exit, async (setId: string | undefined, opts: { config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const r = await list(
          { config, progress: (e) => e.kind === "log" && say(`bsched: ${e.line}`) },
          setId ? getSet(config, setId) : undefined,
        );
        const { backups: all, broken, brokenSets } = r;
        if (opts.json) {
          printJson(all);
          return 0;
        }
        if (broken > 0)
          say(
            `bsched: warning: ${broken} backup(s) cannot be restored (STATE column); they do not count toward keep; ` +
              brokenSets.map((id) => `\`bsched prune ${id} --broken\``).join(", ") +
              " removes them",
          );
        if (all.length === 0) {
          out("no backups yet");
          return 0;
        }
        const rows = all.map((b) => [
          b.name,
          b.set,
          b.type ?? "?",
          b.mode ?? "?",
          b.parent ?? "-",
          b.files === null ? "?" : String(b.files),
          b.bytes === null ? "?" : formatBytes(b.bytes),
          b.diskBytes === null ? "?" : formatBytes(b.diskBytes),
          String(b.warnings.length),
          b.state === "ok" ? "ok" : `broken: ${b.reason}`,
        ]);
        const head = [
          "NAME",
          "SET",
          "TYPE",
          "MODE",
          "PARENT",
          "FILES",
          "SIZE",
          "ON DISK",
          "WARNINGS",
          "STATE",
        ];
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
        for (const r of [head, ...rows])
          process.stdout.write(
            `${r
              .map((c, i) => c.padEnd(widths[i] ?? 0))
              .join("  ")
              .trimEnd()}\n`,
          );
        return 0;
      }),
    );
}
