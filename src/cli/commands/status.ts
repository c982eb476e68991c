import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import { BschedError } from "../../core/errors.ts";
import { COPY_STATUS_TIMEOUT_MS, type CopyStatus } from "../../ops/copy-status.ts";
import { DISK_LOW_HINT } from "../../ops/disk-space.ts";
import type { DrillStatus } from "../../ops/drill-status.ts";
import { status } from "../../ops/status.ts";
import { systemClock } from "../../platform/clock.ts";
import { localTime } from "../local-time.ts";
import type { ExitBox } from "../main.ts";
import { formatBytes, printJson } from "../output.ts";
import { action } from "../run-action.ts";

export function registerStatus(program: Command, exit: ExitBox): void {
  program
    .command("status")
    .description(
      "per set: next run, last run and its result, backups count and size, each copy (newest there, how far behind, last copy); and the daemon",
    )
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option(
      "--offline",
      "for copies, show only what the catalog saw after the last copy: no destination is contacted",
    )
    .option(
      "--timeout <seconds>",
      "how long to wait for each copy destination before showing it unreachable",
      String(COPY_STATUS_TIMEOUT_MS / 1000),
    )
    .option("--json", "print {daemon, sets: [...]} as JSON (each set's copies: [...])")
    .action(
      action(exit, async (opts: { config?: string; json?: boolean; offline?: boolean; timeout: string }) => {
        const seconds = Number(opts.timeout);
        if (!(seconds > 0))
          throw new BschedError("USAGE", `--timeout: a number of seconds above 0, got "${opts.timeout}"`);
        const config = loadConfig(opts.config);
        const { daemon, service, sets } = await status(
          { config, clock: systemClock },
          { offline: opts.offline, timeoutMs: seconds * 1000 },
        );
        // A destination that did not answer may still hold a connection attempt open (a client's
        // own connect timeout can be longer than ours): once everything is printed, it must not
        // keep the process waiting. Not a timer that keeps the process alive by itself.
        const silent = (x: { errorCode?: string }) => x.errorCode === "UNREACHABLE";
        if (sets.some((s) => silent(s.backups) || s.copies.some(silent)))
          setTimeout(() => process.exit(), 1000).unref();
        if (opts.json) {
          printJson({ daemon, service, sets });
          return 0;
        }
        const out = (l: string) => process.stdout.write(`${l}\n`);
        out(
          daemon.running
            ? `daemon: running (pid ${daemon.pid} on ${daemon.host}, since ${daemon.since})${daemon.window ? `; window at ${daemon.window}` : ""}`
            : "daemon: not running",
        );
        out(
          `service: ${
            !service.installed
              ? "not installed (`bsched service install` makes one)"
              : service.active === null
                ? `installed (${service.unit}); systemd is not running here`
                : `installed (${service.unit}), ${service.active}`
          }`,
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
          const b = s.backups;
          if (b.error !== undefined) {
            out(`  backups:   ${b.errorCode === "UNREACHABLE" ? "unreachable" : b.errorCode}: ${b.error}`);
            if (b.errorHint) out(`             hint: ${b.errorHint}`);
          } else out(`  backups:   ${b.count}, ${formatBytes(b.diskBytes)} on disk`);
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
          for (const c of s.copies) for (const line of copyLines(c, config.timezone)) out(line);
          const d = s.disk;
          if (d?.free != null)
            out(
              `  disk:      ${formatBytes(d.free)} free in ${d.folder}${d.nextFull === null ? "" : `; next full about ${formatBytes(d.nextFull)} (as ${d.from})`}`,
            );
          if (d?.low)
            out(
              `  warning:   the next full backup may not fit: ${formatBytes(d.free ?? 0)} free, about ${formatBytes(d.nextFull ?? 0)} needed; ${DISK_LOW_HINT}`,
            );
          if (s.drills) for (const line of drillStatusLines(s.drills, config.timezone)) out(line);
          if (s.backups.broken > 0)
            out(
              `  warning:   ${s.backups.broken} backup(s) cannot be restored: see \`bsched list ${s.set}\`, ` +
                `remove them with \`bsched prune ${s.set} --broken\``,
            );
        }
        return 0;
      }),
    );
}

/** A copy's line (and its hint's): where it stands, then how the last copy ended. */
function copyLines(c: CopyStatus, timezone: string): string[] {
  const head = `${`  copy ${c.destination}:`.padEnd(12)} `;
  const when = (iso: string) => localTime(new Date(iso), timezone);
  const behind =
    c.behind === null ? "" : c.behind === 0 ? ", up to date" : `, ${c.behind} backup(s) behind the folder`;
  const there = c.newest === null ? `no backup${c.seen === "catalog" ? " known" : ""}` : `newest ${c.newest}`;
  const state =
    c.error !== undefined
      ? `${c.errorCode === "UNREACHABLE" ? "unreachable" : (c.errorCode ?? "error")}: ${c.error}` +
        (c.newest === null ? "" : ` (after the last copy: ${there}${behind})`)
      : `${there}${behind}${c.seen === "catalog" ? " (catalog)" : ""}`;
  const l = c.lastCopy;
  const last =
    l === null
      ? "never copied"
      : l.ok
        ? `last copy ok at ${when(l.at)}`
        : `last copy FAILED at ${when(l.at)}${l.code ? ` [${l.code}]` : ""}${l.message ? `: ${l.message}` : ""}`;
  const lines = [`${head}${state}; ${last}`];
  const hint = c.error !== undefined ? c.errorHint : l && !l.ok ? l.hint : undefined;
  if (hint) lines.push(`${"".padEnd(13)}hint: ${hint}`);
  return lines;
}

/** Each drilled place's "last proven restorable" (with the restore time) and last drill; the next drill. */
function drillStatusLines(d: DrillStatus, timezone: string): string[] {
  const when = (iso: string) => localTime(new Date(iso), timezone);
  const secs = (ms: number | null) => (ms === null ? "" : `, restore ${(ms / 1000).toFixed(1)} s`);
  const lines: string[] = [];
  for (const p of d.places) {
    const head = `${`  drill ${p.destination}:`.padEnd(12)} `;
    const proven = p.lastProven
      ? `last proven restorable ${when(p.lastProven.at)} (${p.lastProven.backup}${secs(p.lastProven.restoreMs)})`
      : "never proven restorable";
    const l = p.lastDrill;
    const last =
      l === null ? "" : l.ok ? "" : `; last drill FAILED at ${when(l.at)} [${l.errorCode}]: ${l.error}`;
    lines.push(`${head}${proven}${last}`);
    if (l && !l.ok && l.errorHint) lines.push(`${"".padEnd(13)}hint: ${l.errorHint}`);
  }
  if (d.scheduled && d.nextRun) lines.push(`  next drill: ${when(d.nextRun)}`);
  return lines;
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${suffix}`;
}
