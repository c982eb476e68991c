import { BschedError } from "../../core/errors.ts";
import type { Clock } from "../../platform/clock.ts";
import {
  isStale,
  LEASE_MS,
  LockedError,
  type LockInfo,
  newLockInfo,
  RENEW_MS,
  unreadableLockInfo,
} from "../../platform/lockfile.ts";
import { staleLockName } from "../../platform/names.ts";
import type { Lease } from "../destination.ts";
import type { RemoteFs } from "./remote.ts";

const isMissing = (e: unknown) => (e as { code?: string }).code === "ENOENT";

/** What a lock file on the server says; undefined when there is none. Unreadable: stale 10 s after its mtime. */
async function readLock(fs: RemoteFs, file: string): Promise<LockInfo | undefined> {
  let text: string;
  try {
    text = (await fs.readFile(file, 64 * 1024)).toString("utf8");
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as LockInfo;
  } catch {
    // Half-written (its writer may be mid-write): judged on its age.
    const st = await fs.lstat(file).catch(() => undefined);
    return st ? unreadableLockInfo(st.mtime * 1000) : undefined;
  }
}

/**
 * The set's run lock as a file on the server, the same file and content as a local folder's
 * (src/platform/lockfile.ts): created exclusively (SFTP open with CREAT|EXCL, which OpenSSH
 * honours), holding a lease renewed every 30 s while held. A lock whose lease ran out (its holder
 * died, or lost the server) is taken over: renamed aside first (SFTP's rename never replaces),
 * then checked to be the one judged stale.
 */
export async function remoteLock(fs: RemoteFs, file: string, what: string, clock: Clock): Promise<Lease> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const now = clock.now();
    const info = newLockInfo(what, now);
    const created = await fs
      .writeFile(file, Buffer.from(`${JSON.stringify(info)}\n`), "wx", { fsync: true })
      .then(
        () => true,
        async (e: unknown) => {
          // EXCL on an existing file is a plain FAILURE in SFTP v3: tell it by looking.
          if (isMissing(e) || !(await fs.exists(file))) throw e;
          return false;
        },
      );
    if (created) return startLease(fs, file, info, clock);
    const held = await readLock(fs, file);
    if (!held) continue;
    if (!isStale(held, now)) throw new LockedError(what, file, held);
    const aside = staleLockName(file);
    try {
      await fs.rename(file, aside);
    } catch (e) {
      if (isMissing(e)) continue;
      throw e;
    }
    const moved = await readLock(fs, aside);
    if (moved && moved.token !== held.token) {
      // A fresh holder took it between our look and the rename: give it back.
      await fs.rename(aside, file).catch(() => undefined);
    }
    await fs.unlink(aside).catch(() => undefined);
  }
  throw new BschedError("LOCKED", `${what}: could not take the lock ${file} (contended)`, {
    hint: "try again",
  });
}

function startLease(fs: RemoteFs, file: string, info: LockInfo, clock: Clock): Lease {
  let current = info;
  const timer = setInterval(() => {
    const now = clock.now();
    current = { ...current, expires: new Date(now.getTime() + LEASE_MS).toISOString() };
    // In place ("r+": never re-created if it was taken over): the same length, ISO dates being fixed-width.
    (async () => {
      const f = await fs.open(file, "r+", "renewing the lock");
      try {
        await fs.write(f, Buffer.from(`${JSON.stringify(current)}\n`), 0);
      } finally {
        await fs.closeHandle(f).catch(() => undefined);
      }
    })().catch(() => undefined);
  }, RENEW_MS);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      const held = await readLock(fs, file).catch(() => undefined);
      if (held && held.token === info.token) await fs.unlink(file).catch(() => undefined);
    },
  };
}
