import fsp from "node:fs/promises";
import path from "node:path";
import type { Config } from "../config/load.ts";
import { isStale, type LockInfo } from "../platform/lockfile.ts";
import { DAEMON_LOCK } from "../platform/names.ts";

// The daemon's lock in the state folder, read here, below src/ops and the daemon itself, so that
// `status` (an op) can read it without importing the daemon (which calls the ops).

export interface DaemonState {
  running: boolean;
  pid: number | null;
  host: string | null;
  since: string | null;
}

/** Whether a daemon holds the state folder (its lock file, not stale): what `status` shows. Reads only. */
export async function daemonState(config: Config, now: Date): Promise<DaemonState> {
  try {
    const info = JSON.parse(await fsp.readFile(path.join(config.state, DAEMON_LOCK), "utf8")) as LockInfo;
    if (!isStale(info, now)) return { running: true, pid: info.pid, host: info.host, since: info.since };
  } catch {}
  return { running: false, pid: null, host: null, since: null };
}
