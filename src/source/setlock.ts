import path from "node:path";
import { errnoCode } from "../core/errors.ts";
import type { Clock } from "../platform/clock.ts";
import { acquireLock, type Lock } from "../platform/lockfile.ts";

import { SET_LOCK_NAME } from "../platform/names.ts";

/**
 * The lock file bsched keeps in a set's source folder (backup) or a restore's target folder for
 * as long as it works there, so that the application can see the databases are being backed up
 * or restored and hold off writing. Format and rules: docs/live-databases.md "The lock file".
 * Its name and bsched's other own names: src/platform/names.ts.
 */
export { isOwnFileName, isSetLockName, RESTORED_MARKER, SET_LOCK_NAME } from "../platform/names.ts";

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
