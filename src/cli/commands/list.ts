import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import type { BackupSummary } from "../../core/types.ts";
import { diskBytesOf, listFolder } from "../../destination/local/folder.ts";
import { summarize } from "../../snapshot/manifest.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, out, printJson, say } from "../output.ts";
import { action } from "../run-action.ts";

export function registerList(program: Command, exit: ExitBox): void {
  program
    .command("list")
    .description("list the complete backups, oldest first")
    .argument("[set]", "only this set")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print an array of backups as JSON on stdout")
    .action(
      action(exit, async (setId: string | undefined, opts: { config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const sets = setId ? [getSet(config, setId)] : [...config.sets.values()];
        const all: BackupSummary[] = [];
        for (const set of sets) {
          const { backups, incomplete } = await listFolder(set.folder, set.letter, set.id);
          for (const b of backups) all.push(summarize(b.header, b.path, await diskBytesOf(b.path, b.header)));
          for (const i of incomplete)
            say(`bsched: note: ${i.path} is not a complete backup and is ignored (${i.reason})`);
        }
        all.sort((a, b) =>
          a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.name < b.name ? -1 : 1,
        );
        if (opts.json) {
          printJson(all);
          return 0;
        }
        if (all.length === 0) {
          out("no backups yet");
          return 0;
        }
        const rows = all.map((b) => [
          b.name,
          b.set,
          b.type,
          b.mode,
          b.parent ?? "-",
          String(b.files),
          formatBytes(b.bytes),
          formatBytes(b.diskBytes),
          String(b.warnings.length),
        ]);
        const head = ["NAME", "SET", "TYPE", "MODE", "PARENT", "FILES", "SIZE", "ON DISK", "WARNINGS"];
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
