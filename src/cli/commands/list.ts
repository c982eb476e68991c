import type { Command } from "commander";
import { getSet, loadConfig } from "../../config/load.ts";
import { closeQuietly, describeDestination, openNamedDestination } from "../../destination/by-name.ts";
import { type ListResult, list } from "../../ops/list.ts";
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
    .option(
      "--dest <name>",
      "the backups on this destination (an entry of destinations:, or `folder`: the set's own) instead of the set's own folder",
    )
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option(
      "--json",
      'print an array of backups as JSON on stdout (state: "ok" or "broken", reason; with --dest, inFolder)',
    )
    .action(
      action(
        exit,
        async (setId: string | undefined, opts: { dest?: string; config?: string; json?: boolean }) => {
          const config = loadConfig(opts.config);
          const set = setId ? getSet(config, setId) : undefined;
          const dest = await openNamedDestination(config, opts.dest, set);
          try {
            return await print(
              await list({ config, progress: (e) => e.kind === "log" && say(`bsched: ${e.line}`) }, set, {
                destination: dest,
                compareWithFolder: true,
              }),
              opts.json === true,
              dest === undefined ? undefined : describeDestination(dest),
            );
          } finally {
            await closeQuietly(dest);
          }
        },
      ),
    );
}

/** Print a listing (`on`: the destination listed, when not the sets' own folders). */
function print(r: ListResult, json: boolean, on: string | undefined): number {
  const { backups: all, broken, brokenSets } = r;
  if (json) {
    printJson(all);
    return 0;
  }
  if (on !== undefined) say(`bsched: backups on ${on}`);
  if (broken > 0)
    say(
      `bsched: warning: ${broken} backup(s) cannot be restored (STATE column); they do not count toward keep; ` +
        brokenSets.map((id) => `\`bsched prune ${id} --broken\``).join(", ") +
        " removes them",
    );
  if (all.length === 0) {
    out(on === undefined ? "no backups yet" : `no backups on ${on}`);
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
    ...(on === undefined ? [] : [b.inFolder === true ? "yes" : b.inFolder === false ? "no" : "?"]),
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
    ...(on === undefined ? [] : ["IN FOLDER"]),
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
}
