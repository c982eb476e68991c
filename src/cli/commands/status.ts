import fs from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { backupsUntilFull, chainLength } from "../../backup/cadence.ts";
import { asSeen } from "../../catalog/interrupted.ts";
import { openCatalog, reconcile } from "../../catalog/reconcile.ts";
import { loadConfig } from "../../config/load.ts";
import { DAEMON_LOCK } from "../../daemon/daemon.ts";
import { assessFolder, diskBytesOf, listFolder } from "../../destination/local/folder.ts";
import { systemClock } from "../../platform/clock.ts";
import { isStale, type LockInfo } from "../../platform/lockfile.ts";
import { nextRun, nextRuns } from "../../schedule/schedule.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, printJson } from "../output.ts";
import { action } from "../run-action.ts";
import { localTime } from "./next.ts";

export function registerStatus(program: Command, exit: ExitBox): void {
  program
    .command("status")
    .description("per set: next run, last run and its result, backups count and size; and the daemon")
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option("--json", "print {daemon, sets: [...]} as JSON")
    .action(
      action(exit, async (opts: { config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const now = systemClock.now();
        let daemon: { running: boolean; pid: number | null; host: string | null; since: string | null } = {
          running: false,
          pid: null,
          host: null,
          since: null,
        };
        try {
          const info = JSON.parse(
            await fs.readFile(path.join(config.state, DAEMON_LOCK), "utf8"),
          ) as LockInfo;
          if (!isStale(info, now))
            daemon = { running: true, pid: info.pid, host: info.host, since: info.since };
        } catch {}
        const catalog = openCatalog(config);
        try {
          // The folders are the truth: bring the catalog in line before reporting from it.
          await reconcile(catalog, config);
          const sets = [];
          for (const set of config.sets.values()) {
            const { backups } = await listFolder(set.folder, set.letter, set.id);
            const unrestorable = (await assessFolder(set.folder, set.letter, set.id)).filter(
              (b) => b.state === "broken",
            ).length;
            // A run whose process is gone shows as interrupted (recorded by the next writing command).
            const newest = catalog.runs({ set: set.id, limit: 1 })[0];
            const last = newest && asSeen(newest, now);
            const scheduled = set.automatic && set.frequency !== "now";
            const next = scheduled ? nextRun(set, now, config.timezone) : undefined;
            // The full cadence (incremental sets): how long the chain is, when the next full comes.
            let chain = null;
            if (set.mode === "incremental") {
              const length = await chainLength(backups);
              const nextFullIn = backupsUntilFull(set, length);
              // Runs are counted one by one: bounded, so that a huge fullEvery cannot stall `status`.
              const at =
                scheduled && nextFullIn <= 10_000
                  ? nextRuns(set, now, config.timezone, nextFullIn).at(nextFullIn - 1)
                  : undefined;
              chain = { length, fullEvery: set.fullEvery, nextFullIn, nextFullAt: at?.toISOString() ?? null };
            }
            sets.push({
              set: set.id,
              automatic: set.automatic,
              schedule: {
                frequency: set.frequency,
                day: set.day ?? null,
                time: set.time,
                timezone: config.timezone,
              },
              nextRun: next?.toISOString() ?? null,
              mode: set.mode,
              chain,
              lastRun: last
                ? {
                    status: last.status,
                    trigger: last.trigger,
                    planned: last.planned,
                    startedAt: last.startedAt,
                    finishedAt: last.finishedAt,
                    backup: last.backup,
                    error: last.error,
                  }
                : null,
              backups: {
                count: backups.length,
                storedBytes: backups.reduce((n, b) => n + b.header.totals.storedBytes, 0),
                diskBytes: (await Promise.all(backups.map((b) => diskBytesOf(b.path, b.header)))).reduce(
                  (n, d) => n + d,
                  0,
                ),
                newest: backups.at(-1)?.name ?? null,
                /** Backups that cannot be restored (`bsched list` says why; `prune --broken` removes them). */
                broken: unrestorable,
              },
            });
          }
          if (opts.json) {
            printJson({ daemon, sets });
            return 0;
          }
          const out = (l: string) => process.stdout.write(`${l}\n`);
          out(
            daemon.running
              ? `daemon: running (pid ${daemon.pid} on ${daemon.host}, since ${daemon.since})`
              : "daemon: not running",
          );
          for (const s of sets) {
            out(`${s.set}:`);
            out(
              `  next run:  ${s.nextRun ? localTime(new Date(s.nextRun), config.timezone) : "none (on demand only)"}`,
            );
            const l = s.lastRun;
            out(
              `  last run:  ${l ? `${l.status}${l.finishedAt ? ` at ${localTime(new Date(l.finishedAt), config.timezone)}` : ""}${l.backup ? ` (${l.backup})` : ""}${l.error ? `: ${l.error}` : ""}` : "never"}`,
            );
            out(`  backups:   ${s.backups.count}, ${formatBytes(s.backups.diskBytes)} on disk`);
            const c = s.chain;
            if (c) {
              const when = c.nextFullAt
                ? `, planned ${localTime(new Date(c.nextFullAt), config.timezone)}`
                : "";
              const which =
                c.nextFullIn === 1 ? "the next backup" : `the ${ordinal(c.nextFullIn)} backup from now`;
              out(
                `  chain:     ${c.length} of ${c.fullEvery} (a full every ${c.fullEvery}); next full: ${which}${when}`,
              );
            }
            if (s.backups.broken > 0)
              out(
                `  warning:   ${s.backups.broken} backup(s) cannot be restored: see \`bsched list ${s.set}\`, ` +
                  `remove them with \`bsched prune ${s.set} --broken\``,
              );
          }
          return 0;
        } finally {
          catalog.close();
        }
      }),
    );
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${suffix}`;
}
