import fsp from "node:fs/promises";
import path from "node:path";
import type { Catalog } from "../catalog/catalog.ts";
import { openCatalog, rebuildCatalog } from "../catalog/reconcile.ts";
import type { Config } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import { destinationOf } from "../destination/for-set.ts";
import type { Clock } from "../platform/clock.ts";
import { acquireLock, type Lock, LockedError } from "../platform/lockfile.ts";
import { DAEMON_LOCK } from "../platform/names.ts";
import type { Log } from "./scheduler.ts";

export { DAEMON_LOCK } from "../platform/names.ts";

// The state folder's pieces the daemon service (service.ts) stands on: its lock, its catalog, and
// the cleanup after an aborted run. `bsched catalog rebuild` takes the same lock.

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

/** The state folder's catalog; one that cannot be opened is rebuilt from the backup folders. */
export function openOrRebuild(config: Config, clock: Clock, log: Log): Promise<Catalog> | Catalog {
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
export async function removeOwnTemps(config: Config): Promise<string[]> {
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
