import type { Catalog, RunTrigger } from "../catalog/catalog.ts";
import type { Config, SetConfig } from "../config/load.ts";
import type { Clock } from "../platform/clock.ts";
import { nextRun, slotsBetween } from "../schedule/schedule.ts";
import type { Log, Timer } from "./scheduler.ts";

export interface DrillSchedulerDeps {
  clock: Clock;
  timer: Timer;
  catalog: Catalog;
  log: Log;
  /** Runs one drill of the set (the service: drillNow as a run of its registry); its outcome is recorded there. */
  run(set: SetConfig, trigger: RunTrigger): Promise<unknown>;
  /** The longest sleep (the clock is re-read at least this often). Default 60 s. */
  maxSleepMs?: number | undefined;
  /** When the daemon started: a set never drilled has its drill slots due from then. */
  since?: Date | undefined;
}

/**
 * The restore drills' schedule (issue 14, docs/design.md "Restore drills"): each set whose
 * `drill:` has a frequency other than `now` is drilled at its slots, like its backups. Drills run
 * one at a time (each restores whole backups), in the order they fell due; slots missed while
 * the daemon was down, or while a drill ran, make one drill (a drill proves the state now, so
 * running several would prove nothing more). A drill never overlaps a backup of its set: it holds
 * the set's run lock (a backup that meets it waits for it, see DaemonService).
 */
export class DrillScheduler {
  private config: Config;
  private readonly deps: DrillSchedulerDeps;
  private readonly handled = new Map<string, Date>();
  private readonly queue: { set: string; trigger: RunTrigger }[] = [];
  private running: Promise<void> | undefined;
  private wake = new AbortController();
  private stopping = false;
  private loopDone: Promise<void> | undefined;

  constructor(config: Config, deps: DrillSchedulerDeps) {
    this.config = config;
    this.deps = deps;
  }

  /** Sets whose drills the daemon schedules. */
  drilledSets(): SetConfig[] {
    return [...this.config.sets.values()].filter((s) => s.drill !== undefined && s.drill.frequency !== "now");
  }

  start(): Promise<void> {
    this.loopDone ??= this.loop();
    return this.loopDone;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      this.tick();
      if (this.stopping) break;
      this.wake = new AbortController();
      await this.deps.timer.sleep(this.msToNext(), this.wake.signal);
    }
  }

  /** From when a set's drill slots are due: its last scheduled drill, else the daemon's start. */
  private handledFor(set: SetConfig, now: Date): Date {
    let h = this.handled.get(set.id);
    if (h) return h;
    const last = this.deps.catalog
      .drills({ set: set.id, limit: 50 })
      .find((d) => d.trigger === "schedule" || d.trigger === "catch-up");
    const since = this.deps.since && this.deps.since.getTime() < now.getTime() ? this.deps.since : now;
    h = last ? new Date(last.startedAt) : since;
    this.handled.set(set.id, h);
    return h;
  }

  msToNext(): number {
    const now = this.deps.clock.now();
    let best = this.deps.maxSleepMs ?? 60_000;
    for (const set of this.drilledSets()) {
      const from = this.handledFor(set, now);
      const next = nextRun(
        set.drill as NonNullable<SetConfig["drill"]>,
        new Date(Math.max(from.getTime(), now.getTime())),
        this.config.timezone,
      );
      if (next) best = Math.min(best, next.getTime() - now.getTime());
    }
    return Math.max(0, best);
  }

  /** Look at the clock and queue the drills that fell due. */
  tick(): void {
    if (this.stopping) return;
    const now = this.deps.clock.now();
    for (const set of this.drilledSets()) {
      const from = this.handledFor(set, now);
      const { count, newest } = slotsBetween(
        set.drill as NonNullable<SetConfig["drill"]>,
        from,
        now,
        this.config.timezone,
      );
      if (count === 0 || !newest) continue;
      this.handled.set(set.id, newest);
      if (this.queue.some((q) => q.set === set.id)) continue;
      const trigger: RunTrigger = count > 1 ? "catch-up" : "schedule";
      if (count > 1)
        this.deps.log.warn({ set: set.id, missedSlots: count }, "missed drill slots: drilling once now");
      this.queue.push({ set: set.id, trigger });
    }
    this.pump();
  }

  private pump(): void {
    if (this.running || this.stopping) return;
    const job = this.queue.shift();
    if (!job) return;
    const set = this.config.sets.get(job.set);
    if (!set?.drill) {
      this.pump();
      return;
    }
    this.deps.log.info({ set: set.id, trigger: job.trigger }, "drill started");
    this.running = this.deps
      .run(set, job.trigger)
      .then(
        () => undefined,
        (e) => this.deps.log.error({ set: set.id, err: (e as Error).message }, "drill not run"),
      )
      .finally(() => {
        this.running = undefined;
        this.pump();
      });
  }

  /** New config: the drills' schedules are re-read; a changed schedule is due from now on. */
  reload(config: Config): void {
    const old = this.config;
    this.config = config;
    const now = this.deps.clock.now();
    for (const set of this.drilledSets()) {
      const a = old.sets.get(set.id)?.drill;
      const b = set.drill;
      const same =
        a !== undefined &&
        b !== undefined &&
        a.frequency === b.frequency &&
        String(a.day) === String(b.day) &&
        a.every === b.every &&
        a.time === b.time &&
        old.timezone === config.timezone;
      if (!same) this.handled.set(set.id, now);
    }
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const d = config.sets.get(this.queue[i]?.set ?? "")?.drill;
      if (d === undefined || d.frequency === "now") this.queue.splice(i, 1);
    }
    this.wake.abort();
  }

  /** Stop scheduling; queued drills are dropped. Resolves when the running drill ended (the service cancels it when it must). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.queue.splice(0);
    this.wake.abort();
    await this.loopDone;
    await this.running;
  }

  /** The drill running now, if any (tests, the log). */
  isRunning(): boolean {
    return this.running !== undefined;
  }
}
