import type { Entry, Warning } from "../core/types.ts";

/** Reads of a file that keeps changing, after the first, before the last copy is kept with a warning. */
export const CHANGED_RETRIES = 3;
const PAUSE_MS = 200;

/**
 * Run `attempt` (one read of a file) again while the file changes under the read, at most
 * `retries` more times with a growing pause: a file appended now and then usually settles.
 * `discard` drops a moved copy before the next attempt. The last result is returned even when
 * it still moved (the best copy there is); the caller reports it. Writers of every type share this.
 */
export async function retryWhileChanged<T extends { changedWhileRead: boolean }>(
  attempt: () => Promise<T>,
  discard: () => Promise<void>,
  retries = CHANGED_RETRIES,
): Promise<T & { attempts: number }> {
  for (let n = 1; ; n++) {
    const r = await attempt();
    if (!r.changedWhileRead || n > retries) return { ...r, attempts: n };
    await discard();
    await new Promise((res) => setTimeout(res, PAUSE_MS * n));
  }
}

/** A stored copy of a file, and whether the file moved while it was read. */
export interface StoredFile {
  entry: Entry;
  changedWhileRead: boolean;
}

/** The warning for a file kept although it still moved on its last read: the same for every type. */
export function changedWhileReadWarning(path: string, attempts: number): Warning {
  return {
    path,
    code: "CHANGED_WHILE_READ",
    message: `changed during backup: it moved while read ${attempts} times; the last copy is kept and may be inconsistent`,
  };
}
