import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import type { BackupSummary } from "../../core/types.ts";
import { assessFolder, diskBytesOf } from "../../destination/local/folder.ts";
import type { Restorability } from "../../snapshot/chain.ts";
import { summarize } from "../../snapshot/manifest.ts";
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
        const sets = setId ? [getSet(config, setId)] : [...config.sets.values()];
        // A folder whose manifest cannot be read has no header: its fields are null, its state says why.
        type Row = (BackupSummary | NullSummary) & { state: Restorability["state"]; reason: string | null };
        const all: Row[] = [];
        const brokenSets = new Set<string>();
        let broken = 0;
        for (const set of sets) {
          for (const b of await assessFolder(set.folder, set.letter, set.id)) {
            const reason = b.state === "broken" ? b.reason : null;
            if (b.state === "broken") {
              broken++;
              brokenSets.add(set.id);
            }
            if (b.header)
              all.push({
                ...summarize(b.header, b.path, await diskBytesOf(b.path, b.header)),
                state: b.state,
                reason,
              });
            else {
              say(`bsched: note: ${b.path} is not a complete backup: it cannot be restored (${reason})`);
              all.push({ ...nullSummary(b.name, b.path, set.id), state: b.state, reason });
            }
          }
        }
        // Oldest first; a folder without a readable header sorts by its name (which holds its time).
        all.sort((a, b) => {
          const ka = a.startedAt ?? "";
          const kb = b.startedAt ?? "";
          if (ka && kb && ka !== kb) return ka < kb ? -1 : 1;
          return a.name < b.name ? -1 : 1;
        });
        if (opts.json) {
          printJson(all);
          return 0;
        }
        if (broken > 0)
          say(
            `bsched: warning: ${broken} backup(s) cannot be restored (STATE column); they do not count toward keep; ` +
              [...brokenSets].map((id) => `\`bsched prune ${id} --broken\``).join(", ") +
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

type NullSummary = {
  [K in keyof BackupSummary]: K extends "name" | "path" | "set" | "warnings" ? BackupSummary[K] : null;
};

function nullSummary(name: string, path: string, set: string): NullSummary {
  return {
    name,
    path,
    set,
    type: null,
    mode: null,
    parent: null,
    files: null,
    bytes: null,
    warnings: [],
    startedAt: null,
    finishedAt: null,
    storedFiles: null,
    storedBytes: null,
    diskBytes: null,
  };
}
