import { BschedError } from "../../core/errors.ts";
import type { Clock } from "../../platform/clock.ts";
import {
  isStale,
  LEASE_MS,
  LockedError,
  type LockInfo,
  newLockInfo,
  RENEW_MS,
} from "../../platform/lockfile.ts";
import type { Lease } from "../destination.ts";

/** What the lock needs of the share (SmbDestination gives it). */
export interface LockFiles {
  /** Create `file` holding `text` only if no such file exists (false: it does). */
  createExclusive(file: string, text: string): Promise<boolean>;
  /** Replace `file`'s content atomically (upload beside it, rename over it). */
  replace(file: string, text: string): Promise<void>;
  read(file: string): Promise<string | undefined>;
  /** Rename without replacing; false when `from` is gone. */
  rename(from: string, to: string): Promise<boolean>;
  remove(file: string): Promise<void>;
  /** `file` as messages show it. */
  show(file: string): string;
}

function parse(text: string | undefined): LockInfo | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as LockInfo;
  } catch {
    // Never half-written (it is uploaded beside and renamed in): not ours to judge, so held.
    return {
      tool: "bsched",
      what: "unknown",
      pid: -1,
      host: "?",
      since: "?",
      expires: "9999-12-31T00:00:00Z",
      token: "",
    };
  }
}

/**
 * A set's run lock on a share: the same JSON and lease as a local lock file (docs/design.md
 * "Locks"). SMB has no O_EXCL create through smbclient, but a rename that does not replace is
 * exclusive on the server: the lock is uploaded under a temporary name and renamed to its own,
 * which fails when another holder's is there. A stale lock is renamed aside (one taker wins),
 * then checked by token. Residual race: a renewal replaces the file, so a holder paused past its
 * lease (taken over meanwhile) would overwrite the new holder's lock at its next renewal; both
 * then believe they hold it until the next check — the same window a local lock has.
 */
export async function acquireSmbLock(
  files: LockFiles,
  file: string,
  staleName: () => string,
  what: string,
  clock: Clock,
): Promise<Lease> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const now = clock.now();
    const info = newLockInfo(what, now);
    if (await files.createExclusive(file, `${JSON.stringify(info)}\n`))
      return lease(files, file, info, clock);
    const held = parse(await files.read(file));
    if (!held) continue;
    if (!isStale(held, now)) throw new LockedError(what, files.show(file), held);
    const aside = staleName();
    if (!(await files.rename(file, aside))) continue;
    const moved = parse(await files.read(aside));
    // A fresh lock taken between our read and our rename: put it back.
    if (moved && moved.token !== held.token) await files.rename(aside, file).catch(() => false);
    await files.remove(aside).catch(() => undefined);
  }
  throw new BschedError("LOCKED", `${what}: could not take the lock ${files.show(file)} (contended)`, {
    hint: "try again",
  });
}

function lease(files: LockFiles, file: string, info: LockInfo, clock: Clock): Lease {
  let current = info;
  const timer = setInterval(() => {
    current = { ...current, expires: new Date(clock.now().getTime() + LEASE_MS).toISOString() };
    files.replace(file, `${JSON.stringify(current)}\n`).catch(() => undefined);
  }, RENEW_MS);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      const held = parse(await files.read(file).catch(() => undefined));
      if (held && held.token === info.token) await files.remove(file);
    },
  };
}
