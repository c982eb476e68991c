import fsp from "node:fs/promises";
import path from "node:path";
import type { Config } from "../config/load.ts";
import { isStale, type LockInfo } from "../platform/lockfile.ts";
import { DAEMON_LOCK, WINDOW_FILE } from "../platform/names.ts";

// The daemon's lock in the state folder, read here, below src/ops and the daemon itself, so that
// `status` (an op) can read it without importing the daemon (which calls the ops).

export interface DaemonState {
  running: boolean;
  pid: number | null;
  host: string | null;
  since: string | null;
  /** Where its window is (`http://127.0.0.1:8420/`), when it serves one. */
  window: string | null;
}

/** Whether a daemon holds the state folder (its lock file, not stale): what `status` shows. Reads only. */
export async function daemonState(config: Config, now: Date): Promise<DaemonState> {
  try {
    const info = JSON.parse(await fsp.readFile(path.join(config.state, DAEMON_LOCK), "utf8")) as LockInfo;
    if (!isStale(info, now))
      return {
        running: true,
        pid: info.pid,
        host: info.host,
        since: info.since,
        window: await windowOf(config, info.pid),
      };
  } catch {}
  return { running: false, pid: null, host: null, since: null, window: null };
}

/** The running daemon's window URL from `<state>/window.json`, if that file is this daemon's. */
async function windowOf(config: Config, pid: number): Promise<string | null> {
  try {
    const w = JSON.parse(await fsp.readFile(path.join(config.state, WINDOW_FILE), "utf8")) as {
      url?: unknown;
      pid?: unknown;
    };
    return w.pid === pid && typeof w.url === "string" ? w.url : null;
  } catch {
    return null;
  }
}
