import type { Catalog } from "../../src/catalog/catalog.ts";
import { memoryCatalog } from "../../src/catalog/memory/memory-catalog.ts";
import type { Config, SetConfig } from "../../src/config/load.ts";
import { type Log, Scheduler, type SchedulerDeps, type Timer } from "../../src/daemon/scheduler.ts";
import type { NotifyPayload } from "../../src/notify/webhook.ts";
import { type BackupNowResult, recordBackupRun, recordFailedRun } from "../../src/ops/backup-now.ts";

export class FakeClock {
  t: number;
  constructor(iso: string) {
    this.t = Date.parse(iso);
  }
  now(): Date {
    return new Date(this.t);
  }
  set(iso: string): void {
    this.t = Date.parse(iso);
  }
}

export const flush = () => new Promise<void>((r) => setImmediate(r));

export function set(id: string, over: Partial<SetConfig> = {}): SetConfig {
  return {
    id,
    letter: id.slice(0, 1).toUpperCase(),
    source: `/nonexistent/${id}`,
    automatic: true,
    folder: `/nonexistent/backup`,
    type: "separate",
    mode: "full",
    frequency: "daily",
    day: undefined,
    time: "04:00",
    compression: "zstd",
    catchUp: "once",
    keep: undefined,
    hooks: undefined,
    notify: undefined,
    ...over,
  } as SetConfig;
}

export function config(sets: SetConfig[], timezone = "UTC", concurrency = 1): Config {
  return {
    file: "/nonexistent/bsched.yaml",
    root: "/nonexistent",
    backupFolder: "/nonexistent/backup",
    timezone,
    state: "/nonexistent/.bsched",
    concurrency,
    sets: new Map(sets.map((s) => [s.id, s])),
  } as Config;
}

export interface Call {
  set: string;
  at: string;
}

export interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(e: Error): void;
}

export function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

export const quietLog: Log & { lines: { level: string; msg: string; obj: object }[] } = {
  lines: [],
  info(obj, msg) {
    quietLog.lines.push({ level: "info", msg, obj });
  },
  warn(obj, msg) {
    quietLog.lines.push({ level: "warn", msg, obj });
  },
  error(obj, msg) {
    quietLog.lines.push({ level: "error", msg, obj });
  },
};

/**
 * A scheduler over a fake clock and fake backups that record when they ran. The fake `run` records
 * its outcome in the catalog as the real one (backupNow) does; prune and notify of a run's outcome
 * are backupNow's (test/daemon-service.test.ts runs the real path).
 */
export function harness(
  cfg: Config,
  clock: FakeClock,
  opts: { catalog?: Catalog; timer?: Timer; deps?: Partial<SchedulerDeps> } = {},
) {
  const calls: Call[] = [];
  const notes: NotifyPayload[] = [];
  const pruned: string[] = [];
  let active = new Map<string, number>();
  let maxActive = 0;
  let maxActiveSame = 0;
  /** When set for a set id, that set's backups wait for it. */
  const gates = new Map<string, Deferred>();
  const failing = new Set<string>();
  const catalog = opts.catalog ?? memoryCatalog();
  let n = 0;
  const sched = new Scheduler(cfg, {
    clock,
    timer: opts.timer ?? { sleep: async () => {} },
    catalog,
    log: quietLog,
    async run(s, job): Promise<BackupNowResult> {
      calls.push({ set: s.id, at: clock.now().toISOString() });
      active.set(s.id, (active.get(s.id) ?? 0) + 1);
      maxActiveSame = Math.max(maxActiveSame, ...active.values());
      maxActive = Math.max(
        maxActive,
        [...active.values()].reduce((a, b) => a + b, 0),
      );
      try {
        await gates.get(s.id)?.promise;
        if (failing.has(s.id)) {
          const e = new Error(`source of ${s.id} is missing`);
          recordFailedRun(catalog, job.runId, e, clock.now());
          throw e;
        }
        const now = clock.now().toISOString();
        n++;
        const result: BackupNowResult = {
          summary: {
            name: `${s.letter}_${String(n).padStart(4, "0")}`,
            path: `/nonexistent/${n}`,
            set: s.id,
            type: "separate",
            mode: "full",
            parent: null,
            files: 1,
            bytes: 10,
            warnings: [],
            startedAt: now,
            finishedAt: now,
            storedFiles: 1,
            storedBytes: 10,
            diskBytes: 10,
          },
          warnings: [],
          cleaned: [],
          runId: job.runId,
        };
        recordBackupRun(catalog, job.runId, s.id, result.summary, clock.now());
        if (s.keep && job.prune !== false) pruned.push(s.id);
        return result;
      } finally {
        active.set(s.id, (active.get(s.id) ?? 1) - 1);
      }
    },
    async notify(_s, p) {
      notes.push(p);
    },
    maxSleepMs: 1e12,
    ...opts.deps,
  });
  return {
    sched,
    catalog,
    calls,
    notes,
    pruned,
    gates,
    failing,
    get maxActive() {
      return maxActive;
    },
    get maxActiveSame() {
      return maxActiveSame;
    },
    resetActive() {
      active = new Map();
    },
    /** Move the clock, let the daemon look at it, and let what it started finish. */
    async at(iso: string) {
      clock.set(iso);
      sched.tick();
      await flush();
    },
  };
}
