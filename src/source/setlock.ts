import path from "node:path";
import { errnoCode } from "../core/errors.ts";
import type { Clock } from "../platform/clock.ts";
import { acquireLock, type Lock } from "../platform/lockfile.ts";

/**
 * The lock file bsched keeps in a set's source folder (backup) or a restore's target folder for
 * as long as it works there, so that the application can see the databases are being backed up
 * or restored and hold off writing. Format and rules: docs/live-databases.md "The lock file".
 */
export const SET_LOCK_NAME = ".bsched-lock";

/** Our lock file and the names acquireLock gives a stale one it moves aside: never backed up. */
export function isSetLockName(rel: string): boolean {
  return rel === SET_LOCK_NAME || rel.startsWith(`${SET_LOCK_NAME}.stale-`);
}

/**
 * The file a restore leaves in its target (bsched restore and a self-extracting file's --target)
 * naming the backup the folder is now at: a later incremental `.sh` applies only onto its parent.
 */
export const RESTORED_MARKER = ".bsched-restored";

/** bsched's own files in a source or target folder (at its top): never backed up, not content. */
export function isOwnFileName(rel: string): boolean {
  return isSetLockName(rel) || rel === RESTORED_MARKER || rel.startsWith(`${RESTORED_MARKER}.tmp`);
}

export type SetLockResult = { lock: Lock; reason?: undefined } | { lock?: undefined; reason: string };

/**
 * Take the lock of `folder`. A folder bsched may read but not write (a read-only mount, a
 * source owned by another user) cannot carry one: that is reported, not fatal. A live lock
 * held by another run fails with LOCKED naming its owner; a stale one (its process died, or its
 * lease ran out) is taken over.
 */
export async function lockFolder(folder: string, what: string, clock: Clock): Promise<SetLockResult> {
  try {
    return { lock: await acquireLock(path.join(folder, SET_LOCK_NAME), what, clock) };
  } catch (e) {
    const code = errnoCode(e);
    if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
      return { reason: `cannot create ${path.join(folder, SET_LOCK_NAME)} (${code})` };
    }
    throw e;
  }
}
