import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { runBackup } from "../backup/run.ts";
import type { Catalog } from "../catalog/catalog.ts";
import { interruptGoneRuns } from "../catalog/interrupted.ts";
import { openCatalog, rebuildCatalog, reconcile } from "../catalog/reconcile.ts";
import { type Config, loadConfig } from "../config/load.ts";
import { BschedError, errnoCode } from "../core/errors.ts";
import { destinationOf } from "../destination/for-set.ts";
import { postWebhook } from "../notify/webhook.ts";
import { pruneAfterBackup } from "../ops/prune.ts";
import type { Clock } from "../platform/clock.ts";
import { acquireLock, type Lock, LockedError } from "../platform/lockfile.ts";
import { DAEMON_LOCK } from "../platform/names.ts";
import { type Log, realTimer, Scheduler, type Timer } from "./scheduler.ts";

export { DAEMON_LOCK } from "../platform/names.ts";

/** 20 × 15 s: a manual backup of the set may hold its lock for 5 minutes before a run gives up. */
const LOCKED_RETRIES = 20;

export interface DaemonOptions {
  configFile?: string | undefined;
  clock: Clock;
  log: Log;
  timer?: Timer;
  /** How long SIGTERM waits for running backups before aborting them. */
  stopGraceMs?: number;
  /** Polling interval of the config file (a change reloads it). */
  watchMs?: number;
}

/** Take the state folder for this daemon, or say clearly which daemon has it. */
export async function lockState(config: Config, clock: Clock): Promise<Lock> {
  await fsp.mkdir(config.state, { recursive: true });
  const file = path.join(config.state, DAEMON_LOCK);
  try {
    return await acquireLock(file, `bsched daemon for ${config.state}`, clock);
  } catch (e) {
    if (e instanceof BschedError && e.code === "LOCKED") {
      const h = e instanceof LockedError ? e.holder : undefined;
      const who = h ? ` (pid ${h.pid} on ${h.host}, since ${h.since})` : "";
      throw new BschedError(
        "LOCKED",
        `another bsched daemon is already running on the state folder ${config.state}${who}`,
        {
          hint: `stop it first (kill -TERM its pid); a killed daemon's lock is taken over automatically, or expires; lock file: ${file}`,
        },
      );
    }
    throw e;
  }
}

function openOrRebuild(config: Config, clock: Clock, log: Log): Promise<Catalog> | Catalog {
  try {
    return openCatalog(config);
  } catch (e) {
    if (!(e instanceof BschedError) || e.code !== "CATALOG") throw e;
    log.error({ err: e.message }, "catalog unusable: rebuilding it from the backup folders");
    return rebuildCatalog(config, clock.now()).then(() => openCatalog(config));
  }
}

/**
 * Remove this process's staging areas and set locks (an aborted run's) on every set's
 * destination, so nothing partial stays and no lock of ours is left to go stale.
 */
async function removeOwnTemps(config: Config): Promise<string[]> {
  const removed: string[] = [];
  const seen = new Set<string>();
  for (const set of config.sets.values()) {
    const dest = destinationOf(set);
    if (seen.has(dest.where)) continue;
    seen.add(dest.where);
    removed.push(...((await dest.removeOwnLeftovers?.(process.pid)) ?? []));
  }
  return removed;
}

/**
 * `bsched daemon`: one per state folder; runs until SIGTERM/SIGINT; SIGHUP or a changed config
 * file reloads. Resolves with the exit code.
 */
export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const { clock, log } = opts;
  const configWarning = (m: string) => log.warn({}, `config: ${m}`);
  let config = loadConfig(opts.configFile, configWarning);
  const lock = await lockState(config, clock);
  let catalog: Catalog | undefined;
  const stopping = new AbortController();
  try {
    catalog = await openOrRebuild(config, clock, log);
    const cat = catalog;
    // Runs whose process is gone (this daemon's predecessor killed, a manual backup killed) are
    // recorded as interrupted; a manual backup still running in its own process is left alone.
    for (const r of interruptGoneRuns(cat, clock.now(), { legacy: true }))
      log.warn({ set: r.set, run: r.id, why: r.error }, "a run was interrupted: recorded so");
    for (const r of await reconcile(cat, config)) {
      if (r.added.length + r.removed.length + r.updated.length > 0)
        log.warn({ ...r }, "catalog repaired from the backup folders");
    }
    const noticed = new Set<string>();
    const scheduler = new Scheduler(config, {
      clock,
      timer: opts.timer ?? realTimer,
      catalog: cat,
      log,
      backup: async (set, timezone) => {
        // A manual `bsched backup` (or prune) of the set holds its lock: wait for it, not fail.
        for (let attempt = 1; ; attempt++) {
          try {
            return await runBackup({
              set,
              timezone,
              clock,
              onLog: (line) => log.info({ set: set.id }, line),
              onWarning: (w) => log.warn({ set: set.id, path: w.path, code: w.code }, w.message),
              onNotice: (w) => {
                // Advice about the set's folder: once per daemon start, not at every run.
                const key = `${set.id}\0${w.code}\0${w.path}`;
                if (noticed.has(key)) return;
                noticed.add(key);
                log.warn({ set: set.id, path: w.path, code: w.code }, w.message);
              },
            });
          } catch (e) {
            const locked = e instanceof BschedError && e.code === "LOCKED";
            if (!locked || attempt >= LOCKED_RETRIES || stopping.signal.aborted) throw e;
            log.warn({ set: set.id, err: (e as Error).message, attempt }, "set busy: retrying in 15 s");
            await (opts.timer ?? realTimer).sleep(15_000, stopping.signal);
          }
        }
      },
      prune: async (set, timezone) => {
        // The same step a manual backup takes (src/ops): keep policy applied with the catalog.
        const r = await pruneAfterBackup({ config: { ...config, timezone }, clock }, set, cat);
        if (r.removed.length > 0)
          log.info({ set: set.id, removed: r.removed, freedBytes: r.freedBytes }, "pruned");
        if (r.plan.broken.length > 0)
          log.warn(
            { set: set.id, broken: r.plan.broken },
            "backups that cannot be restored: kept, not counted by keep",
          );
        return r;
      },
      notify: (set, payload) =>
        set.notify ? postWebhook(set.notify.webhook, payload, { log }) : Promise.resolve(false),
    });

    const reload = (why: string) => {
      try {
        const next = loadConfig(config.file, configWarning);
        if (next.state !== config.state)
          log.warn({ state: next.state }, "server.state changes take effect when the daemon restarts");
        config = { ...next, state: config.state };
        scheduler.reload(config);
        log.info({ why, file: config.file }, "config reloaded");
      } catch (e) {
        log.error({ why, err: (e as Error).message }, "config NOT reloaded (keeping the previous one)");
      }
    };
    let lastStat = fs.statSync(config.file, { throwIfNoEntry: false });
    const onFileChange = (cur: fs.Stats) => {
      if (lastStat && cur.mtimeMs === lastStat.mtimeMs && cur.size === lastStat.size) return;
      lastStat = cur;
      if (cur.nlink === 0 && cur.size === 0) return;
      reload("config file changed");
    };
    fs.watchFile(config.file, { interval: opts.watchMs ?? 2000 }, onFileChange);

    let stopRequested: ((sig: string) => void) | undefined;
    const stopped = new Promise<string>((r) => {
      stopRequested = r;
    });
    let signals = 0;
    const onStop = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        log.warn({ signal: sig }, "second stop signal: aborting now");
        void removeOwnTemps(config).finally(() => process.exit(1));
        return;
      }
      stopRequested?.(sig);
    };
    const onHup = () => reload("SIGHUP");
    process.on("SIGTERM", onStop);
    process.on("SIGINT", onStop);
    process.on("SIGHUP", onHup);
    log.info(
      {
        state: config.state,
        config: config.file,
        timezone: config.timezone,
        sets: scheduler.automaticSets().map((s) => s.id),
      },
      "daemon started",
    );
    const loop = scheduler.start();
    const sig = await Promise.race([stopped, loop.then(() => "end")]);
    log.info({ signal: sig, running: scheduler.runningSets() }, "stopping: letting running backups finish");
    stopping.abort();
    const grace = opts.stopGraceMs ?? 300_000;
    const finished = await scheduler.stop(grace);
    await loop;
    fs.unwatchFile(config.file, onFileChange);
    process.off("SIGTERM", onStop);
    process.off("SIGINT", onStop);
    process.off("SIGHUP", onHup);
    if (!finished) {
      for (const id of scheduler.runningRunIds()) {
        cat.finishRun(id, {
          finishedAt: clock.now().toISOString(),
          status: "aborted",
          error: `stopped by ${sig}: did not finish within ${Math.round(grace / 1000)} s; nothing partial was kept`,
        });
      }
      const removed = await removeOwnTemps(config);
      log.warn({ removed }, "running backups aborted; their temporary folders were removed");
      cat.close();
      await lock.release();
      // The aborted backup's promise still holds the event loop: leave now, cleanly recorded.
      process.exit(1);
    }
    log.info({}, "daemon stopped");
    return 0;
  } finally {
    catalog?.close();
    await lock.release().catch((e) => {
      if (errnoCode(e) !== "ENOENT") throw e;
    });
  }
}
