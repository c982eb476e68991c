import type { Catalog, RunStatus, RunTrigger } from "../catalog/catalog.ts";
import type { Config, SetConfig } from "../config/load.ts";
import { cancelledError } from "../core/cancel.ts";
import { BschedError } from "../core/errors.ts";
import type { BackupMode, BackupType } from "../core/types.ts";
import { payloadOf } from "../notify/notify.ts";
import { type NotifyPayload, wants } from "../notify/webhook.ts";
import { type BackupNowResult, recordFailedRun } from "../ops/backup-now.ts";
import type { RunScope } from "../ops/runs.ts";
import type { Clock } from "../platform/clock.ts";
import { nextRun, slotsBetween } from "../schedule/schedule.ts";
import { type ClockJump, ClockWatch } from "./clock-watch.ts";

/** Sleeps; `signal` wakes it early (a reload, a stop). Tests pass one that moves a fake clock. */
export interface Timer {
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** pino's call shape, so pino or a test recorder can be passed. */
export interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SchedulerDeps {
  clock: Clock;
  timer: Timer;
  catalog: Catalog;
  log: Log;
  /**
   * Runs one job whose catalog run `job.runId` the scheduler has started: the daemon passes the
   * ops layer's backupNow (run → record → prune with the catalog → notify), one path for scheduled
   * and manual backups. It records the outcome itself; a job that throws before recording anything
   * is recorded failed here.
   */
  run(set: SetConfig, job: RunJob): Promise<BackupNowResult>;
  /** Posts a `missed` notification (run outcomes are notified by `run`). */
  notify?(set: SetConfig, payload: NotifyPayload): Promise<unknown>;
  /**
   * The longest sleep: a real clock can jump (NTP, suspend) while a timer runs on monotonic time,
   * so the daemon re-reads the clock at least this often. Default 60 s.
   */
  maxSleepMs?: number;
  /** A slot noticed later than this (a suspended machine) counts as missed. Default 10 min. */
  lateMs?: number;
  /**
   * When the daemon started (before it read its config and opened its catalog): a set scheduled
   * for the first time has its slots due from then, so a slot that passes while a slow start is
   * still under way runs. Default: the first look at the clock.
   */
  since?: Date;
  /** A wall-clock move this much beyond the monotonic clock's between two looks is a jump (default 60 s). */
  jumpToleranceMs?: number;
}

interface Job {
  set: string;
  /** The schedule slot; null for a run asked for now. */
  planned: Date | null;
  trigger: RunTrigger;
  slots: number;
  manual?: ManualJob;
}

/** What someone who asked for a run now (runNow) gave and waits for. */
interface ManualJob extends RunNowOptions {
  scope: RunScope;
  resolve(r: BackupNowResult): void;
  reject(e: unknown): void;
}

export interface RunNowOptions {
  mode?: BackupMode | undefined;
  type?: BackupType | undefined;
  /** false: no keep policy after this backup (`bsched backup --no-prune`). */
  prune?: boolean | undefined;
}

/** One job leaving the queue, as `SchedulerDeps.run` gets it. */
export interface RunJob extends RunNowOptions {
  runId: number;
  planned: Date | null;
  trigger: RunTrigger;
  slots: number;
  /** A manual run's registry scope (its events and its signal); scheduled runs get theirs from `run`. */
  scope?: RunScope | undefined;
}

/** How many ended runs `Scheduler.ended` remembers (newest last): a daemon runs for months. */
export const ENDED_KEPT = 100;

export interface RunEnd {
  set: string;
  runId: number;
  status: RunStatus;
}

/**
 * The schedule loop. For each automatic set it remembers the newest slot handled (persisted in
 * the catalog when a run starts), so every slot is handled exactly once whatever the clock does:
 * slots in (handled, now] are due; several due at once, or one noticed late, were missed and run
 * once or not at all (catchUp); a clock that goes back finds nothing due until it passes the
 * handled slot again.
 */
export class Scheduler {
  private config: Config;
  private readonly deps: SchedulerDeps;
  private readonly handled = new Map<string, Date>();
  /** Sets whose last run was aborted: their due slot is a catch-up, not an ordinary run. */
  private readonly retry = new Set<string>();
  private readonly queue: Job[] = [];
  private readonly running = new Map<string, Promise<void>>();
  private readonly runIds = new Map<string, number>();
  private readonly background = new Set<Promise<unknown>>();
  private wake = new AbortController();
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  /** The newest ENDED_KEPT runs that ended, oldest first (tests and the log read it). */
  readonly ended: RunEnd[] = [];
  readonly #clockWatch: ClockWatch;
  /** The monotonic time (else the wall time) of the last look at the clock: /healthz reads it. */
  lastTickAt: number | undefined;

  constructor(config: Config, deps: SchedulerDeps) {
    this.config = config;
    this.deps = deps;
    this.#clockWatch = new ClockWatch(deps.jumpToleranceMs);
  }

  /** Sets the daemon schedules. */
  automaticSets(): SetConfig[] {
    return [...this.config.sets.values()].filter((s) => s.automatic && s.frequency !== "now");
  }

  /** Start the loop; the returned promise ends after stop(). */
  start(): Promise<void> {
    this.loopDone ??= this.loop();
    return this.loopDone;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      this.tick();
      if (this.stopping) break;
      const ms = this.msToNext();
      this.wake = new AbortController();
      await this.deps.timer.sleep(ms, this.wake.signal);
    }
  }

  /** How long to sleep before the next slot of any set (at most maxSleepMs). */
  msToNext(): number {
    const now = this.deps.clock.now();
    const cap = this.deps.maxSleepMs ?? 60_000;
    let best = cap;
    for (const set of this.automaticSets()) {
      const from = this.handledFor(set, now);
      const base = from.getTime() > now.getTime() ? from : now;
      const next = nextRun(set, base, this.config.timezone);
      if (next) best = Math.min(best, next.getTime() - now.getTime());
    }
    return Math.max(0, best);
  }

  private handledFor(set: SetConfig, now: Date): Date {
    let h = this.handled.get(set.id);
    if (h) return h;
    const mark = this.deps.catalog.lastPlanned(set.id);
    if (mark) {
      h = new Date(mark);
      const last = this.deps.catalog.runs({ set: set.id, limit: 1 })[0];
      const cut = last?.status === "aborted" || last?.status === "interrupted";
      if (cut && last?.planned === mark) {
        // The slot's run was cut short (daemon killed or stopped mid-run): not done, so due again.
        h = new Date(h.getTime() - 1);
        this.retry.add(set.id);
        this.deps.log.warn({ set: set.id, planned: mark }, "the last run was aborted: its slot is due again");
      }
    } else {
      // First time this set is scheduled: nothing before the daemon started was ever due.
      const since = this.deps.since;
      h = since && since.getTime() < now.getTime() ? since : now;
      this.deps.catalog.markPlanned(set.id, h.toISOString());
      this.deps.log.info({ set: set.id }, "set scheduled for the first time");
    }
    this.handled.set(set.id, h);
    return h;
  }

  /** Look at the clock and queue what is due. Called by the loop on every wake. */
  tick(): void {
    if (this.stopping) return;
    const now = this.deps.clock.now();
    const tz = this.config.timezone;
    const mono = this.deps.clock.monotonic?.();
    this.lastTickAt = mono ?? now.getTime();
    const jump = this.#clockWatch.observe(now, mono);
    if (jump) this.logJump(jump, now);
    for (const set of this.automaticSets()) {
      const from = this.handledFor(set, now);
      const { count, newest } = slotsBetween(set, from, now, tz);
      if (count === 0 || !newest) continue;
      this.handled.set(set.id, newest);
      const late = now.getTime() - newest.getTime() > (this.deps.lateMs ?? 600_000);
      const retried = this.retry.delete(set.id);
      if (count === 1 && !late && !retried) {
        this.enqueue({ set: set.id, planned: newest, trigger: "schedule", slots: 1 });
        continue;
      }
      this.deps.log.warn(
        {
          set: set.id,
          missedSlots: count,
          newest: newest.toISOString(),
          catchUp: set.catchUp,
          ...(jump ? { why: jump.why } : {}),
        },
        set.catchUp === "once" ? "missed slots: running once now" : "missed slots: skipped (catchUp: skip)",
      );
      this.notify(set, {
        event: "missed",
        planned: newest.toISOString(),
        status: set.catchUp === "once" ? "catch-up" : "missed",
        missedSlots: count,
      });
      if (set.catchUp === "once") {
        this.enqueue({ set: set.id, planned: newest, trigger: "catch-up", slots: count });
      } else {
        const at = now.toISOString();
        this.deps.catalog.startRun({
          set: set.id,
          planned: newest.toISOString(),
          trigger: "schedule",
          startedAt: null,
          finishedAt: at,
          status: "missed",
          slots: count,
          error: `${count} slot(s) passed while the daemon was not running`,
        });
      }
    }
    this.pump();
  }

  /** A jump noticed: said once, with what the schedule rules make of it. */
  private logJump(jump: ClockJump, now: Date): void {
    this.deps.log.warn(
      { jumpMs: jump.jumpMs, now: now.toISOString() },
      jump.jumpMs > 0
        ? `${jump.why}: slots passed meanwhile follow the catch-up rule (catchUp: once runs a set once, skip records them missed)`
        : `${jump.why}: slots already handled are not run again; the schedule resumes once the clock passes them`,
    );
  }

  /**
   * Run a set now through this queue: it waits for a run of the same set (scheduled or not) and
   * counts toward `server.concurrency`, so it never overlaps one. Resolves with the backup's result;
   * rejects with its error, or when the daemon stops before it starts, or when `scope.signal`
   * cancels it while it waits.
   */
  runNow(setId: string, opts: RunNowOptions, scope: RunScope): Promise<BackupNowResult> {
    if (this.stopping) return Promise.reject(stoppingError(setId));
    return new Promise<BackupNowResult>((resolve, reject) => {
      const job: Job = {
        set: setId,
        planned: null,
        trigger: "manual",
        slots: 1,
        manual: { ...opts, scope, resolve, reject },
      };
      const busy = this.running.has(setId) || this.running.size >= this.config.concurrency;
      this.queue.push(job);
      scope.signal.addEventListener(
        "abort",
        () => {
          const i = this.queue.indexOf(job);
          if (i < 0) return; // started: the backup itself honours the signal
          this.queue.splice(i, 1);
          reject(cancelledError(`backup of set ${setId} (waiting in the daemon's queue)`));
        },
        { once: true },
      );
      if (busy)
        scope.progress({
          kind: "log",
          line: this.running.has(setId)
            ? `waiting for the daemon's running backup of set ${setId}`
            : `waiting in the daemon's queue (server.concurrency ${this.config.concurrency})`,
        });
      this.pump();
    });
  }

  private enqueue(job: Job): void {
    const waiting = this.queue.find((j) => j.set === job.set && !j.manual);
    if (waiting) {
      // One pending run per set: a slot that comes while the previous one still waits joins it.
      waiting.planned = job.planned;
      waiting.slots += job.slots;
      this.deps.log.warn(
        { set: job.set, planned: job.planned?.toISOString() },
        "previous run still waiting: merged",
      );
      return;
    }
    this.queue.push(job);
  }

  private pump(): void {
    const limit = this.config.concurrency;
    for (let i = 0; i < this.queue.length && this.running.size < limit; ) {
      const job = this.queue[i] as Job;
      if (this.running.has(job.set) || this.stopping) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      const set = this.config.sets.get(job.set);
      if (!set) {
        // Removed by a reload while it waited.
        job.manual?.reject(
          new BschedError("SET_UNKNOWN", `set ${job.set} is no longer in the daemon's config`, {
            hint: `the daemon reloaded ${this.config.file}; check its sets`,
          }),
        );
        continue;
      }
      const p = this.runJob(set, job).finally(() => {
        this.running.delete(job.set);
        this.pump();
      });
      this.running.set(job.set, p);
    }
  }

  private async runJob(set: SetConfig, job: Job): Promise<void> {
    const { catalog, clock, log } = this.deps;
    const startedAt = clock.now().toISOString();
    const planned = job.planned?.toISOString() ?? null;
    let runId: number;
    try {
      runId = catalog.startRun({ set: set.id, planned, trigger: job.trigger, startedAt, slots: job.slots });
    } catch (e) {
      log.error(
        { set: set.id, err: (e as Error).message },
        "backup not started: the catalog refused its run",
      );
      job.manual?.reject(e);
      return;
    }
    this.runIds.set(set.id, runId);
    log.info({ set: set.id, runId, planned, trigger: job.trigger }, "backup started");
    let status: RunStatus;
    try {
      const m = job.manual;
      const result = await this.deps.run(set, {
        runId,
        planned: job.planned,
        trigger: job.trigger,
        slots: job.slots,
        ...(m ? { mode: m.mode, type: m.type, prune: m.prune, scope: m.scope } : {}),
      });
      const s = result.summary;
      status = s.warnings.length > 0 ? "warnings" : "ok";
      log.info(
        {
          set: set.id,
          runId,
          backup: s.name,
          mode: s.mode,
          type: s.type,
          parent: s.parent,
          files: s.files,
          bytes: s.bytes,
          storedFiles: s.storedFiles,
          diskBytes: s.diskBytes,
          path: s.path,
          status,
        },
        "backup finished",
      );
      m?.resolve(result);
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      status = "failed";
      try {
        // `run` records its outcome; one that failed before it could (or after: a failed prune) is
        // left as it recorded it, and one still `running` is recorded failed here.
        const rec = catalog.getRun(runId);
        if (rec?.status === "running") recordFailedRun(catalog, runId, e, clock.now());
        else if (rec) status = rec.status;
      } catch {}
      log.error({ set: set.id, runId, err: msg }, "backup failed");
      job.manual?.reject(e);
    }
    this.runIds.delete(set.id);
    this.ended.push({ set: set.id, runId, status });
    if (this.ended.length > ENDED_KEPT) this.ended.splice(0, this.ended.length - ENDED_KEPT);
  }

  private notify(
    set: SetConfig,
    p: Partial<NotifyPayload> & Pick<NotifyPayload, "event" | "status" | "planned">,
  ): void {
    if (!this.deps.notify || !wants(set.notify, p.event)) return;
    const payload = payloadOf(set.id, p);
    const pending = this.deps.notify(set, payload).catch((e) => {
      this.deps.log.warn({ set: set.id, err: (e as Error).message }, "notification failed");
    });
    this.background.add(pending);
    pending.finally(() => this.background.delete(pending));
  }

  /** New config (SIGHUP, changed file): running backups keep theirs; the schedule is re-read. */
  reload(config: Config): void {
    const old = this.config;
    this.config = config;
    const now = this.deps.clock.now();
    for (const set of this.automaticSets()) {
      const before = old.sets.get(set.id);
      const same =
        before?.automatic &&
        before.frequency === set.frequency &&
        String(before.day) === String(set.day) &&
        before.every === set.every &&
        before.time === set.time &&
        old.timezone === config.timezone;
      const h = this.handled.get(set.id);
      if (!same && (!h || h.getTime() < now.getTime())) {
        // Slots a new schedule would have had before it existed were never due.
        this.handled.set(set.id, now);
        this.deps.catalog.markPlanned(set.id, now.toISOString());
      }
    }
    for (const id of old.sets.keys()) {
      const now = config.sets.get(id);
      if (!now?.automatic || now.frequency === "now") {
        // A set no longer scheduled forgets its queued scheduled run; if scheduled again it starts
        // fresh. A run asked for now stays queued (it runs with the new config, or fails if the set is gone).
        for (let i = this.queue.length - 1; i >= 0; i--)
          if (this.queue[i]?.set === id && !this.queue[i]?.manual) this.queue.splice(i, 1);
      }
    }
    this.deps.log.info({ sets: this.automaticSets().map((s) => s.id) }, "schedule updated");
    this.wake.abort();
  }

  /** Send a notification in the background; stop() lets it finish (bounded). */
  track(pending: Promise<unknown>): void {
    const p = pending.catch(() => undefined);
    this.background.add(p);
    p.finally(() => this.background.delete(p));
  }

  /** Resolves when the runs in progress now have ended (whatever their outcome). */
  async settled(): Promise<void> {
    await Promise.all([...this.running.values()]);
  }

  /**
   * Whether the loop looks at the clock as it should (/healthz): started, not stopping, and its
   * last look no older than two of its longest sleeps (plus slack for a loaded machine).
   */
  alive(): boolean {
    if (!this.loopDone || this.stopping || this.lastTickAt === undefined) return false;
    const now = this.deps.clock.monotonic?.() ?? this.deps.clock.now().getTime();
    return now - this.lastTickAt <= 2 * (this.deps.maxSleepMs ?? 60_000) + 30_000;
  }

  /** Wake the loop now (re-check the clock). */
  poke(): void {
    this.wake.abort();
  }

  runningSets(): string[] {
    return [...this.running.keys()];
  }

  /** Catalog ids of the runs in progress. */
  runningRunIds(): number[] {
    return [...this.runIds.values()];
  }

  queuedSets(): string[] {
    return this.queue.map((j) => j.set);
  }

  /** Resolves when nothing runs, nothing waits, and notifications are sent. */
  async idle(): Promise<void> {
    while (this.running.size > 0 || this.background.size > 0) {
      await Promise.all([...this.running.values(), ...this.background]);
    }
  }

  /**
   * Stop scheduling; queued scheduled runs are dropped (their slots stay unhandled in the catalog, so the
   * next start catches them up). Resolves true when running backups finished within `graceMs`.
   */
  async stop(graceMs: number): Promise<boolean> {
    this.stopping = true;
    // Runs asked for now that have not started are refused (their caller hears why); scheduled
    // ones are dropped (their slots stay unhandled, caught up at the next start).
    for (const j of this.queue.splice(0)) j.manual?.reject(stoppingError(j.set));
    this.wake.abort();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => {
      timer = setTimeout(() => r(false), graceMs);
    });
    const done = Promise.all([...this.running.values()]).then(() => true as const);
    const ok = await Promise.race([done, timeout]);
    clearTimeout(timer);
    await this.loopDone;
    // Let notifications already under way be sent (each is bounded by its own retries and timeouts).
    let t2: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.background]),
      new Promise((r) => {
        t2 = setTimeout(r, Math.min(graceMs, 15_000));
      }),
    ]);
    clearTimeout(t2);
    return ok;
  }
}

function stoppingError(set: string): BschedError {
  return new BschedError("LOCKED", `the daemon is stopping: the backup of set ${set} was not started`, {
    hint: `run \`bsched backup ${set}\` again once the daemon has stopped (it then runs in its own process)`,
  });
}

/** A real timer: setTimeout, woken by the signal. */
export const realTimer: Timer = {
  sleep(ms, signal) {
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  },
};
