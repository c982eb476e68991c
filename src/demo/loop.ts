import { runBackup } from "../backup/run.ts";
import type { Config } from "../config/load.ts";
import type { BackupMode } from "../core/types.ts";
import type { Clock } from "../platform/clock.ts";

/**
 * The demo's short schedule: how often each set is backed up while `bsched demo` runs, and the
 * delay of its first run, so that the first backups appear within seconds.
 */
export const DEMO_SCHEDULE: Record<string, { everyS: number; firstS: number }> = {
  data: { everyS: 30, firstS: 2 },
  archive: { everyS: 20, firstS: 5 },
  inout: { everyS: 25, firstS: 8 },
  video: { everyS: 40, firstS: 11 },
};

export interface DemoLoop {
  /** Stop scheduling; resolves when the backups running now have finished. */
  stop(): Promise<void>;
}

/**
 * Run each set's backups on the demo schedule, one at a time per set (a run still going when
 * its next turn comes is not doubled), printing what it does and where the backups go.
 *
 * SWITCH TO THE DAEMON HERE: `bsched daemon` (src/daemon/) runs the config's schedules, which
 * are daily/weekly/monthly at HH:MM: at best one backup per set per day, no demo. When the
 * config can say "every N seconds/minutes" (or the daemon takes a demo timer), replace this loop
 * with runDaemon() on the demo config; runs would then also land in the catalog (status/history).
 */
export function startDemoLoop(config: Config, clock: Clock, say: (line: string) => void): DemoLoop {
  const timers: NodeJS.Timeout[] = [];
  const running = new Set<Promise<void>>();
  const busy = new Set<string>();
  let stopped = false;
  const counts = new Map<string, number>();

  const runOnce = (setId: string) => {
    const set = config.sets.get(setId);
    if (!set || stopped || busy.has(setId)) return;
    busy.add(setId);
    const nth = (counts.get(setId) ?? 0) + 1;
    counts.set(setId, nth);
    // The first incremental of a chain is a full; a fresh full every 5 runs keeps chains short.
    const mode: BackupMode | undefined = set.mode === "incremental" && nth % 5 === 1 ? "full" : undefined;
    const p = runBackup({
      set,
      timezone: config.timezone,
      clock,
      mode,
      onWarning: (w) => say(`  ${setId}: warning: ${w.path}: ${w.message} [${w.code}]`),
      onLog: (line) => say(`  ${setId}: ${line}`),
    })
      .then((r) => {
        const s = r.summary;
        say(
          `backup ${setId}: ${s.name} (${s.mode} ${s.type}${s.parent ? `, after ${s.parent}` : ""}): ` +
            `${s.files} files, ${(s.bytes / 1e6).toFixed(2)} MB, stored ${s.storedFiles} → ${s.path}`,
        );
      })
      .catch((e: Error) => say(`backup ${setId}: FAILED: ${e.message}`))
      .finally(() => {
        busy.delete(setId);
        running.delete(p);
      });
    running.add(p);
  };

  for (const [setId, when] of Object.entries(DEMO_SCHEDULE)) {
    if (!config.sets.has(setId)) continue;
    timers.push(
      setTimeout(() => {
        runOnce(setId);
        timers.push(setInterval(() => runOnce(setId), when.everyS * 1000));
      }, when.firstS * 1000),
    );
  }
  return {
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all([...running]);
    },
  };
}
