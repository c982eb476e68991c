import { createHash } from "node:crypto";
import { accessSync, constants as C, chownSync, readFileSync, realpathSync, statSync } from "node:fs";
import { BschedError } from "../core/errors.ts";
import { writeFileAtomic } from "../platform/fsutil.ts";
import { fromOsError } from "../platform/os-errors.ts";

/** Reading and replacing the config file itself (src/ops/config.ts decides what to write). */

export function hashText(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

export function readConfigText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw fromOsError(e, { path: file, doing: `read the config ${file}` });
  }
}

/**
 * Replace the config file with `next`, unless it no longer holds the text whose hash is `readHash`
 * (CONFIG_CHANGED: someone changed it meanwhile) or the user may not write it (PERMISSION_DENIED
 * naming it: checked, since a rename would otherwise replace a read-only file). Temporary name,
 * fsync, rename; the file's mode kept, and its owner when root writes it; a config reached
 * through a symbolic link is changed where it really is, the link stays. A change made in the
 * instant between the last read and the rename would still be lost: there is no lock on a file
 * an editor writes.
 */
export async function replaceConfigText(file: string, readHash: string, next: string): Promise<void> {
  try {
    accessSync(file, C.W_OK);
  } catch (e) {
    throw fromOsError(e, { path: file, doing: `change the config ${file}` });
  }
  // Read again just before replacing it: a change made meanwhile is refused, not lost.
  if (hashText(readConfigText(file)) !== readHash) throw changedMeanwhile(file);
  try {
    const real = realpathSync(file);
    const st = statSync(real);
    await writeFileAtomic(real, next, { mode: st.mode & 0o7777 });
    // Root changing another user's file (`sudo bsched config set`) leaves it that user's.
    if (process.getuid?.() === 0 && (st.uid !== 0 || st.gid !== 0)) chownSync(real, st.uid, st.gid);
  } catch (e) {
    throw fromOsError(e, { path: file, doing: `write the config ${file}` });
  }
}

export function changedMeanwhile(file: string): BschedError {
  return new BschedError(
    "CONFIG_CHANGED",
    `the config ${file} changed since it was read; nothing was written`,
    {
      hint: "read it again (`bsched config show`) and make the change on what it holds now",
      exitCode: 1,
    },
  );
}
