import { randomBytes } from "node:crypto";
import { constants as C } from "node:fs";
import fs from "node:fs/promises";
import { setTimeout as sleepMs } from "node:timers/promises";
import { BschedError, errnoCode } from "../core/errors.ts";
import type { Clock } from "./clock.ts";
import { hostName, isProcessAlive } from "./host.ts";
import { staleLockName } from "./names.ts";

/** Content of a lock file (documented in docs/design.md "Locks"). */
export interface LockInfo {
  tool: "bsched";
  what: string;
  pid: number;
  host: string;
  since: string;
  /** The lease: past this instant the lock is stale even if its owner cannot be checked. */
  expires: string;
  token: string;
}

export interface Lock {
  readonly file: string;
  readonly info: LockInfo;
  release(): Promise<void>;
}

/** A live lock refused us; `holder` is what its file said, for callers that word it their way. */
export class LockedError extends BschedError {
  readonly holder: LockInfo;

  constructor(what: string, file: string, holder: LockInfo) {
    super(
      "LOCKED",
      `${what}: locked by ${holder.what} (pid ${holder.pid} on ${holder.host} since ${holder.since})`,
      {
        hint: `wait for it to finish; if that process is gone, the lock expires at ${holder.expires} or remove ${file}`,
      },
    );
    this.holder = holder;
  }
}

/** How long a lock holds without renewal, and how often its holder renews it (every kind of lock). */
export const LEASE_MS = 120_000;
export const RENEW_MS = 30_000;

/** A new lock's content for `what`, owned by this process, its lease starting `now`. */
export function newLockInfo(what: string, now: Date): LockInfo {
  return {
    tool: "bsched",
    what,
    pid: process.pid,
    host: hostName(),
    since: now.toISOString(),
    expires: new Date(now.getTime() + LEASE_MS).toISOString(),
    token: randomBytes(8).toString("hex"),
  };
}

/** Grace a lock file that cannot be parsed gets from its mtime: its writer may be mid-write. */
const UNREADABLE_GRACE_MS = 10_000;

/** What an unreadable or half-written lock file counts as: nobody's, stale 10 s after it was last written. */
export function unreadableLockInfo(mtimeMs: number): LockInfo {
  return {
    tool: "bsched",
    what: "unknown",
    pid: -1,
    host: "",
    since: new Date(mtimeMs).toISOString(),
    expires: new Date(mtimeMs + UNREADABLE_GRACE_MS).toISOString(),
    token: "",
  };
}

export function isStale(info: LockInfo, now: Date): boolean {
  if (Date.parse(info.expires) < now.getTime()) return true;
  return info.host === hostName() && !isProcessAlive(info.pid);
}

async function readLock(file: string): Promise<LockInfo | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, "utf8")) as LockInfo;
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return undefined;
    // Unreadable or half-written: treat as stale only if old enough (the writer may be mid-write).
    const st = await fs.stat(file).catch(() => undefined);
    return st ? unreadableLockInfo(st.mtimeMs) : undefined;
  }
}

/**
 * Take a lock file atomically (O_EXCL). A lock whose owner died on this host, or whose lease
 * ran out, is taken over; a live one makes this fail with LOCKED naming its owner.
 */
export async function acquireLock(file: string, what: string, clock: Clock): Promise<Lock> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const now = clock.now();
    const info = newLockInfo(what, now);
    try {
      const fh = await fs.open(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o644);
      try {
        await fh.writeFile(`${JSON.stringify(info)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return startLease(file, info, clock);
    } catch (e) {
      if (errnoCode(e) !== "EEXIST") throw e;
    }
    const held = await readLock(file);
    if (!held) continue;
    if (!isStale(held, now)) throw new LockedError(what, file, held);
    // Move the stale lock aside, then check we moved the one we judged, not a fresh one.
    const aside = staleLockName(file);
    try {
      await fs.rename(file, aside);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") continue;
      throw e;
    }
    const moved = await readLock(aside);
    if (moved && moved.token !== held.token) {
      await fs.link(aside, file).catch(() => undefined);
    }
    await fs.rm(aside, { force: true });
  }
  throw new BschedError("LOCKED", `${what}: could not take the lock ${file} (contended)`, {
    hint: "try again",
  });
}

function startLease(file: string, info: LockInfo, clock: Clock): Lock {
  let current = info;
  const timer = setInterval(() => {
    const now = clock.now();
    current = { ...current, expires: new Date(now.getTime() + LEASE_MS).toISOString() };
    // Rewrite in place: the lock file's identity (the O_EXCL create) must not change.
    fs.writeFile(file, `${JSON.stringify(current)}\n`).catch(() => undefined);
  }, RENEW_MS);
  timer.unref();
  return {
    file,
    get info() {
      return current;
    },
    async release() {
      clearInterval(timer);
      const held = await readLock(file);
      if (held && held.token === info.token) await fs.rm(file, { force: true });
    },
  };
}

/**
 * Run `body` holding the lock file `file` ("the users file", "the secret store": `what`). For
 * locks held milliseconds at a time: a held lock is waited for (up to `waitMs`, 15 s), not
 * refused, so two changes at once both land.
 */
export async function withLockWaiting<T>(
  file: string,
  what: string,
  clock: Clock,
  body: () => Promise<T>,
  waitMs = 15_000,
): Promise<T> {
  const giveUp = Date.now() + waitMs;
  let lock: Lock;
  for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
    try {
      lock = await acquireLock(file, what, clock);
      break;
    } catch (e) {
      if (!(e instanceof BschedError && e.code === "LOCKED") || Date.now() > giveUp) throw e;
      await sleepMs(wait);
    }
  }
  try {
    return await body();
  } finally {
    await lock.release();
  }
}
