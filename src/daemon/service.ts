import fs from "node:fs";
import path from "node:path";
import type { Catalog, RunTrigger } from "../catalog/catalog.ts";
import { interruptGoneRuns } from "../catalog/interrupted.ts";
import { reconcile } from "../catalog/reconcile.ts";
import { type Config, getSet, loadConfig, type SetConfig } from "../config/load.ts";
import { BschedError, errnoCode } from "../core/errors.ts";
import { nextDigest } from "../notify/digest.ts";
import { makeNotifier, type Notifier } from "../notify/notify.ts";
import { readNotifyState } from "../notify/repeats.ts";
import { type BackupNowResult, backupNow } from "../ops/backup-now.ts";
import type { ProgressSink } from "../ops/context.ts";
import { checkDiskSpace, DISK_LOW_HINT, type DiskFree, diskLowMessage } from "../ops/disk-space.ts";
import type { DrillNowResult } from "../ops/drill.ts";
import { sendDigest } from "../ops/notify.ts";
import { type RunHandle, RunRegistry, type RunScope } from "../ops/runs.ts";
import type { Clock } from "../platform/clock.ts";
import { type Lock, LockedError } from "../platform/lockfile.ts";
import { DAEMON_SOCKET } from "../platform/names.ts";
import type { ControlServer } from "./control.ts";
import { lockState, openOrRebuild, removeOwnTemps } from "./daemon.ts";
import { DrillScheduler } from "./drills.ts";
import { type Log, type RunJob, type RunNowOptions, realTimer, Scheduler, type Timer } from "./scheduler.ts";

/** 20 × 15 s: a manual backup of the set in another process may hold its lock for 5 minutes. */
const LOCKED_RETRIES = 20;
const LOCKED_PAUSE_MS = 15_000;
/** A drill waits up to an hour (240 × 15 s) for a backup, copy or prune of its set to end. */
const DRILL_LOCKED_RETRIES = 240;
/** How long stop() gives cancelled runs to wind down before it records them aborted. */
const CANCEL_SETTLE_MS = 5_000;

export interface DaemonServiceOptions {
  configFile?: string | undefined;
  clock: Clock;
  log: Log;
  timer?: Timer | undefined;
  /** Polling interval of the config file (a change reloads it); 0: not watched. Default 2 s. */
  watchMs?: number | undefined;
  /** Listen on the control socket `<state>/daemon.sock` (default true). */
  control?: boolean | undefined;
  /** The scheduler's longest sleep (default 60 s): it re-reads the clock at least this often. */
  maxSleepMs?: number | undefined;
  /** How a backup folder's free space is measured (default statfs); tests give a disk of a chosen size. */
  diskFree?: DiskFree | undefined;
}

/** A reload of the config, as `DaemonService.onConfig` tells it (the window's `config` event). */
export interface ConfigEvent {
  why: string;
  /** false: the file was refused and the previous config kept (`error` says why). */
  ok: boolean;
  error?: string | undefined;
}

export interface StopResult {
  /** true: every running backup finished within the grace period; false: they were aborted. */
  finished: boolean;
  /** Catalog ids of the runs recorded `aborted`. */
  aborted: number[];
  /** This process's temporary folders and set locks removed after an abort. */
  removed: string[];
}

/**
 * The daemon as an object: what `bsched daemon` runs, and what another part of the same process
 * (the HTTP server of the next issues, a test) can drive. It takes the state folder's lock, keeps
 * the catalog open, runs the schedule, and runs sets on demand through the SAME queue (so a run
 * asked for now never overlaps a scheduled run of its set). Every backup goes through the ops
 * layer's backupNow (run → record → prune → notify) as a run of `runs`, whose events also feed
 * the log. No signal handlers, no process.exit, no global state: src/daemon/process.ts does that.
 */
export class DaemonService {
  readonly runs: RunRegistry;
  readonly #opts: DaemonServiceOptions;
  readonly #log: Log;
  readonly #stopping = new AbortController();
  /** Notices (advice about a set's folder) are logged once per daemon start, not at every run. */
  readonly #noticed = new Set<string>();
  #state: "new" | "starting" | "started" | "stopping" | "stopped" = "new";
  #config: Config | undefined;
  #lock: Lock | undefined;
  #catalog: Catalog | undefined;
  #scheduler: Scheduler | undefined;
  #drills: DrillScheduler | undefined;
  #loop: Promise<void> | undefined;
  #control: ControlServer | undefined;
  #unwatch: (() => void) | undefined;
  #cutGrace: (() => void) | undefined;
  /** Webhook and email, with the repeat counts in the state folder (src/notify/notify.ts). */
  #notifier: Notifier | undefined;
  #digest: Promise<void> | undefined;
  readonly #configListeners = new Set<(e: ConfigEvent) => void>();

  constructor(opts: DaemonServiceOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.runs = new RunRegistry(opts.clock);
  }

  get config(): Config {
    if (!this.#config) throw notStarted();
    return this.#config;
  }

  /** The daemon's open catalog (history, marks, backups), while it runs. */
  get catalog(): Catalog {
    if (!this.#catalog) throw notStarted();
    return this.#catalog;
  }

  get scheduler(): Scheduler {
    if (!this.#scheduler) throw notStarted();
    return this.#scheduler;
  }

  /** The control socket's path, or undefined when it is not listening. */
  get socketPath(): string | undefined {
    return this.#control?.path;
  }

  /**
   * Load the config, take the state folder (LOCKED when another daemon has it), open (or rebuild)
   * the catalog, record gone runs as interrupted, repair the catalog from the folders, start the
   * schedule and the control socket.
   */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("DaemonService.start: a service starts once");
    this.#state = "starting";
    const { clock } = this.#opts;
    const log = this.#log;
    // Read before the slow part of a start (config, catalog, control socket): see SchedulerDeps.since.
    const since = clock.now();
    const config = loadConfig(this.#opts.configFile, (m) => log.warn({}, `config: ${m}`));
    this.#config = config;
    this.#lock = await lockState(config, clock);
    try {
      const cat = await openOrRebuild(config, clock, log);
      this.#catalog = cat;
      // Runs whose process is gone (this daemon's predecessor killed, a manual backup killed) are
      // recorded as interrupted; a manual backup still running in its own process is left alone.
      for (const r of interruptGoneRuns(cat, clock.now(), { legacy: true }))
        log.warn({ set: r.set, run: r.id, why: r.error }, "a run was interrupted: recorded so");
      for (const r of await reconcile(cat, config)) {
        if (r.added.length + r.removed.length + r.updated.length > 0)
          log.warn({ ...r }, "catalog repaired from the backup folders");
      }
      const notifier = makeNotifier({
        state: config.state,
        clock,
        repeatWindowMs: () => this.#config?.notify?.repeatWindowMs,
        log,
      });
      this.#notifier = notifier;
      this.#scheduler = new Scheduler(config, {
        clock,
        timer: this.#opts.timer ?? realTimer,
        catalog: cat,
        log,
        since,
        run: (set, job) => this.#run(set, job),
        notify: (set, payload) => notifier(set, payload),
        ...(this.#opts.maxSleepMs !== undefined ? { maxSleepMs: this.#opts.maxSleepMs } : {}),
      });
      // Restore drills (issue 14) on their own schedule, one at a time, each holding its set's lock.
      this.#drills = new DrillScheduler(config, {
        clock,
        timer: this.#opts.timer ?? realTimer,
        catalog: cat,
        log,
        since,
        run: (set, trigger) => this.drillNow(set.id, { trigger }).result,
        maxSleepMs: this.#opts.maxSleepMs,
      });
      this.#watch();
      if (this.#opts.control !== false) await this.#listen();
      log.info(
        {
          state: config.state,
          config: config.file,
          timezone: config.timezone,
          sets: this.#scheduler.automaticSets().map((s) => s.id),
          socket: this.#control?.path ?? null,
        },
        "daemon started",
      );
      // Started before the loops: a slot already due runs at once, and its backup or drill
      // (runNow, drillNow) must not find the daemon still "starting" (a drill failed so in CI).
      this.#state = "started";
      this.#loop = this.#scheduler.start();
      this.#digest = this.#digestLoop(since);
      void this.#drills.start();
      this.#checkDisk();
    } catch (e) {
      this.#unwatch?.();
      await this.#control?.close().catch(() => undefined);
      this.#catalog?.close();
      await this.#lock.release().catch(() => undefined);
      this.#state = "stopped";
      throw e;
    }
  }

  /**
   * Re-read the config file. Running backups keep the config they started with; queued scheduled
   * runs of sets no longer scheduled are dropped; runs asked for now stay queued (and fail if their
   * set is gone). An invalid file is logged and the previous config kept: returns false.
   * `server.state` and `server.web` changes take effect at the next start.
   */
  reload(why = "reload"): boolean {
    const log = this.#log;
    const current = this.config;
    try {
      const next = loadConfig(current.file, (m) => log.warn({}, `config: ${m}`));
      if (next.state !== current.state)
        log.warn({ state: next.state }, "server.state changes take effect when the daemon restarts");
      if (JSON.stringify(next.web) !== JSON.stringify(current.web))
        log.warn({ web: next.web }, "server.web changes take effect when the daemon restarts");
      this.#config = { ...next, state: current.state, web: current.web };
      this.scheduler.reload(this.#config);
      this.#drills?.reload(this.#config);
      log.info({ why, file: current.file }, "config reloaded");
      this.#tellConfig({ why, ok: true });
      return true;
    } catch (e) {
      log.error({ why, err: (e as Error).message }, "config NOT reloaded (keeping the previous one)");
      this.#tellConfig({ why, ok: false, error: (e as Error).message });
      return false;
    }
  }

  /** Be told of every reload (the file changed on disk, or a change through the window). */
  onConfig(listener: (e: ConfigEvent) => void): () => void {
    this.#configListeners.add(listener);
    return () => this.#configListeners.delete(listener);
  }

  #tellConfig(e: ConfigEvent): void {
    for (const l of this.#configListeners) {
      try {
        l(e);
      } catch {
        // A listener's failure (a closed event stream) never stops a reload.
      }
    }
  }

  /** Each backup folder's free space against its set's next full (/metrics, `bsched status`). */
  diskSpace(): ReturnType<typeof checkDiskSpace> {
    return checkDiskSpace(this.config, this.catalog, this.#opts.diskFree);
  }

  /** For /healthz: the service runs and its schedule loop is alive (no data, a yes or no). */
  healthy(): boolean {
    return this.#state === "started" && this.#scheduler?.alive() === true;
  }

  /** Wake the schedule loop: it re-reads the clock now (a test that moved its clock). */
  poke(): void {
    this.scheduler.poke();
  }

  /**
   * Back up `setId` now through the scheduler's queue: it waits for a running or queued run of the
   * same set (and counts toward `server.concurrency`), then runs backupNow with the daemon's catalog.
   * The handle is listed in `runs` from now (queued included); its result is the backup's.
   */
  runNow(
    setId: string,
    opts: RunNowOptions & { progress?: ProgressSink | undefined } = {},
  ): RunHandle<BackupNowResult> {
    if (this.#state !== "started") throw stoppedError(setId, this.#state);
    const set = getSet(this.config, setId);
    const { progress, ...runOpts } = opts;
    const handle = this.runs.start(
      { kind: "backup", set: set.id, trigger: "manual" },
      (scope) => this.scheduler.runNow(set.id, runOpts, scope),
      { progress },
    );
    handle.subscribe(this.#logSink(set.id, handle.info.id));
    return handle;
  }

  /**
   * Drill `setId` now (issue 14): drillNow as a run of `runs` (kind `drill`), with the daemon's
   * catalog. It holds the set's run lock; a backup, copy or prune holding it is waited for (15 s
   * pauses while the daemon runs), and a backup the schedule starts meanwhile waits for the drill.
   */
  drillNow(
    setId: string,
    opts: { trigger?: RunTrigger; place?: string; backup?: string; progress?: ProgressSink } = {},
  ): RunHandle<DrillNowResult> {
    if (this.#state !== "started" && this.#state !== "stopping") throw stoppedError(setId, this.#state);
    const set = getSet(this.config, setId);
    const config = this.config;
    const log = this.#log;
    const timer = this.#opts.timer ?? realTimer;
    const scheduled = opts.trigger === "schedule" || opts.trigger === "catch-up";
    const handle = this.runs.start(
      { kind: "drill", set: set.id, trigger: scheduled ? "schedule" : "manual" },
      async (scope) => {
        const { drillNow } = await import("../ops/drill.ts");
        const waitSignal = AbortSignal.any([scope.signal, this.#stopping.signal]);
        let attempt = 0;
        const r = await drillNow(
          {
            config,
            clock: this.#opts.clock,
            catalog: this.catalog,
            progress: scope.progress,
            signal: scope.signal,
          },
          {
            set,
            place: opts.place,
            backup: opts.backup,
            trigger: opts.trigger ?? "manual",
            whenLocked: async (e) => {
              if (++attempt >= DRILL_LOCKED_RETRIES || waitSignal.aborted) return false;
              log.warn({ set: set.id, err: e.message, attempt }, "set busy: the drill retries in 15 s");
              await timer.sleep(LOCKED_PAUSE_MS, waitSignal);
              return !waitSignal.aborted;
            },
          },
        );
        for (const d of r.drills)
          (d.ok ? log.info : log.error).call(
            log,
            {
              set: set.id,
              from: d.destination,
              backup: d.backup,
              pick: d.pick,
              restoreMs: d.restoreMs,
              ok: d.ok,
              ...(d.ok ? {} : { err: d.error, code: d.errorCode }),
            },
            d.ok ? "drill passed: proven restorable" : "drill FAILED",
          );
        return r;
      },
      { progress: opts.progress },
    );
    handle.subscribe(this.#logSink(set.id, handle.info.id));
    return handle;
  }

  /**
   * Stop: no new run starts; queued runs are dropped (runs asked for now are refused with LOCKED);
   * running backups may finish within `graceMs` (default 300 s). Past that — or at once after
   * abortNow() — they are cancelled through their signal, recorded `aborted`, and this process's
   * temporary folders and set locks are removed, so nothing partial is kept; `finished` is then
   * false. The catalog is closed and the state folder released either way.
   */
  async stop(opts: { graceMs?: number | undefined; why?: string | undefined } = {}): Promise<StopResult> {
    if (this.#state !== "started") throw new Error(`DaemonService.stop: the service is ${this.#state}`);
    this.#state = "stopping";
    const log = this.#log;
    const sched = this.scheduler;
    const grace = opts.graceMs ?? 300_000;
    log.info(
      { why: opts.why ?? "stop", running: sched.runningSets() },
      "stopping: letting running backups finish",
    );
    this.#stopping.abort();
    this.#unwatch?.();
    const cut = new Promise<false>((r) => {
      this.#cutGrace = () => r(false);
    });
    const drillsDone = this.#drills?.stop();
    const finished = await Promise.race([sched.stop(grace), cut]);
    const result: StopResult = { finished, aborted: [], removed: [] };
    if (!finished) {
      const ids = sched.runningRunIds();
      for (const r of this.runs.list()) this.runs.cancel(r.id, `the daemon stopped (${opts.why ?? "stop"})`);
      // A cancelled backup stops promptly and records itself failed: give it a moment, then record
      // what it is for the schedule, `aborted` (its slot is due again at the next start).
      await raceTimeout(sched.settled(), Math.min(grace, CANCEL_SETTLE_MS));
      const now = this.#opts.clock.now().toISOString();
      for (const id of ids) {
        try {
          this.catalog.finishRun(id, {
            finishedAt: now,
            status: "aborted",
            error: `stopped by ${opts.why ?? "stop"}: did not finish within ${Math.round(grace / 1000)} s; nothing partial was kept`,
          });
          result.aborted.push(id);
        } catch (e) {
          log.error({ run: id, err: (e as Error).message }, "could not record the aborted run");
        }
      }
      result.removed = await removeOwnTemps(this.config);
      log.warn({ removed: result.removed }, "running backups aborted; their temporary folders were removed");
    }
    await this.#control?.close().catch(() => undefined);
    this.#control = undefined;
    // A running drill may finish within the grace too; past it (or after an abort) it is cancelled,
    // which removes its scratch folder, and records nothing.
    let drillEnded = false;
    const drillEnd = (drillsDone ?? Promise.resolve()).then(() => {
      drillEnded = true;
    });
    if (finished) await raceTimeout(drillEnd, grace);
    if (!drillEnded) {
      for (const r of this.runs.list()) if (r.kind === "drill") this.runs.cancel(r.id, "the daemon stopped");
      await raceTimeout(drillEnd, CANCEL_SETTLE_MS);
    }
    if (finished) await this.#loop;
    // A digest being mailed just now is given the grace of a cancelled run, no more.
    await raceTimeout(this.#digest ?? Promise.resolve(), CANCEL_SETTLE_MS);
    this.catalog.close();
    await this.#lock?.release().catch((e) => {
      if (errnoCode(e) !== "ENOENT") throw e;
    });
    this.#state = "stopped";
    if (finished) log.info({}, "daemon stopped");
    return result;
  }

  /** During stop(): stop waiting for running backups, abort them now (a second SIGTERM). */
  abortNow(): void {
    this.#cutGrace?.();
  }

  /** One job leaving the queue: a registry run (a manual one already is) doing backupNow. */
  #run(set: SetConfig, job: RunJob): Promise<BackupNowResult> {
    // A running backup keeps the config it started with, whatever a reload does meanwhile.
    const config = this.config;
    const body = (scope: RunScope) => this.#backup(config, set, job, scope);
    let result: Promise<BackupNowResult>;
    if (job.scope) result = body(job.scope);
    else {
      const handle = this.runs.start({ kind: "backup", set: set.id, trigger: "schedule" }, body);
      handle.subscribe(this.#logSink(set.id, handle.info.id));
      result = handle.result;
    }
    // After each run, whatever its outcome: is there room for the set's next full?
    const check = () => this.#checkDisk(set.id);
    result.then(check, check);
    return result;
  }

  /**
   * Warn in the log when a backup folder has less free space than the next full backup is expected
   * to take (src/ops/disk-space.ts): at start and after each run of `only` (every set at start).
   */
  #checkDisk(only?: string): void {
    const cat = this.#catalog;
    if (!cat || this.#state !== "started") return;
    const pending = checkDiskSpace(this.config, cat, this.#opts.diskFree).then(
      (checks) => {
        for (const c of checks) {
          if (only !== undefined && c.set !== only) continue;
          if (c.low)
            this.#log.warn(
              { set: c.set, folder: c.folder, free: c.free, nextFull: c.nextFull, hint: DISK_LOW_HINT },
              diskLowMessage(c),
            );
        }
      },
      (e) =>
        this.#log.warn({ err: (e as Error).message }, "the backup folders' free space could not be read"),
    );
    this.#scheduler?.track(pending);
  }

  #backup(config: Config, set: SetConfig, job: RunJob, scope: RunScope): Promise<BackupNowResult> {
    const log = this.#log;
    const timer = this.#opts.timer ?? realTimer;
    const waitSignal = AbortSignal.any([scope.signal, this.#stopping.signal]);
    let attempt = 0;
    return backupNow(
      {
        config,
        clock: this.#opts.clock,
        catalog: this.catalog,
        progress: scope.progress,
        signal: scope.signal,
      },
      {
        set,
        runId: job.runId,
        trigger: job.trigger,
        mode: job.mode,
        type: job.type,
        prune: job.prune,
        // A manual `bsched backup` in another process (or a prune) holds the set's lock: wait for it.
        // This daemon's own drill of the set is waited for as long as it runs (it ends by itself).
        whenLocked: async (e) => {
          const ownDrill =
            e instanceof LockedError &&
            e.holder.pid === process.pid &&
            e.holder.what.startsWith("drill of set");
          if ((!ownDrill && ++attempt >= LOCKED_RETRIES) || waitSignal.aborted) return false;
          log.warn({ set: set.id, err: e.message, attempt }, "set busy: retrying in 15 s");
          await timer.sleep(LOCKED_PAUSE_MS, waitSignal);
          return !waitSignal.aborted;
        },
        // In the background: a slow webhook or mail server must not hold the set's queue.
        notify: async (s, payload) => {
          const notifier = this.#notifier;
          if (s.notify && notifier) this.scheduler.track(notifier(s, payload));
        },
      },
    );
  }

  /**
   * The weekly digest (`server.notify.digest`, to `server.notify.email`): sent when its slot has
   * passed since the last one sent (recorded in the state folder; never sent: since this start),
   * so a slot missed while the daemon was down is sent once at start. A failure is logged and
   * tried again an hour later. Real timers, the injected clock: it never moves a test's clock.
   */
  async #digestLoop(start: Date): Promise<void> {
    const log = this.#log;
    const clock = this.#opts.clock;
    const cap = this.#opts.maxSleepMs ?? 60_000;
    let retryAt = 0;
    while (!this.#stopping.signal.aborted) {
      let wait = cap;
      const config = this.#config;
      const digest = config?.notify?.digest;
      if (config && digest && config.notify?.email) {
        const last = readNotifyState(config.state).digestAt;
        const due = nextDigest(digest, last ? new Date(last) : undefined, start, config.timezone);
        const now = clock.now().getTime();
        if (due && due.getTime() <= now && now >= retryAt) {
          try {
            const r = await sendDigest({ config, clock, catalog: this.catalog });
            log.info({ to: r.to }, "weekly digest sent");
          } catch (e) {
            retryAt = now + 3_600_000;
            const err = e as BschedError;
            log.warn(
              { code: err.code },
              `weekly digest not sent: ${err.message}${err.hint ? `; ${err.hint}` : ""}; trying again in an hour`,
            );
          }
          continue;
        }
        const next = due === undefined ? undefined : Math.max(due.getTime(), retryAt);
        if (next !== undefined) wait = Math.max(1000, Math.min(cap, next - now));
      }
      await realTimer.sleep(wait, this.#stopping.signal);
    }
  }

  /** The log's view of a run's events: phase changes, warnings, hook lines (not every progress tick). */
  #logSink(set: string, run: string): ProgressSink {
    const log = this.#log;
    let phase = "";
    return (e) => {
      switch (e.kind) {
        case "progress": {
          const p = e.progress;
          if (p.phase === phase) return;
          phase = p.phase;
          log.info(
            {
              set,
              run,
              phase: p.phase,
              files: p.files,
              totalFiles: p.totalFiles,
              bytes: p.bytes,
              totalBytes: p.totalBytes,
            },
            "phase",
          );
          return;
        }
        case "warning":
          return log.warn({ set, path: e.warning.path, code: e.warning.code }, e.warning.message);
        case "notice": {
          const key = `${set}\0${e.warning.code}\0${e.warning.path}`;
          if (this.#noticed.has(key)) return;
          this.#noticed.add(key);
          return log.warn({ set, path: e.warning.path, code: e.warning.code }, e.warning.message);
        }
        case "log":
          return log.info({ set, run }, e.line);
        default:
          return log.warn({ set, run }, e.message);
      }
    };
  }

  #watch(): void {
    const ms = this.#opts.watchMs ?? 2000;
    if (ms <= 0) return;
    const file = this.config.file;
    let lastStat = fs.statSync(file, { throwIfNoEntry: false });
    const onChange = (cur: fs.Stats) => {
      if (lastStat && cur.mtimeMs === lastStat.mtimeMs && cur.size === lastStat.size) return;
      lastStat = cur;
      if (cur.nlink === 0 && cur.size === 0) return;
      this.reload("config file changed");
    };
    fs.watchFile(file, { interval: ms }, onChange);
    this.#unwatch = () => fs.unwatchFile(file, onChange);
  }

  async #listen(): Promise<void> {
    const socket = path.join(this.config.state, DAEMON_SOCKET);
    try {
      // Loaded here: every other command imports this module, and only a daemon needs fastify.
      const { listenControl } = await import("./control.ts");
      this.#control = await listenControl(this, socket);
    } catch (e) {
      // Without it the daemon still runs its schedule; a manual backup then runs in its own process
      // and the set's run lock keeps the two apart (the daemon's run waits for it).
      this.#log.warn(
        { socket, err: (e as Error).message },
        "control socket not available: manual backups will not go through the daemon's queue",
      );
    }
  }
}

function notStarted(): Error {
  return new Error("the daemon service is not started");
}

function stoppedError(set: string, state: string): BschedError {
  return new BschedError("LOCKED", `the daemon is ${state}: the backup of set ${set} was not started`, {
    hint: `run \`bsched backup ${set}\` again once the daemon has stopped (it then runs in its own process)`,
  });
}

async function raceTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => (t = setTimeout(r, ms)))]);
  clearTimeout(t);
}
