import fs from "node:fs/promises";
import path from "node:path";
import { BschedError, errnoCode } from "../../core/errors.ts";
import { fromOsError } from "../../platform/os-errors.ts";

// What is truly local about a backup folder: making sure it exists (LocalDestination.ready). Reading
// a set's backups is destination-agnostic: src/destination/backups.ts.

/**
 * Make sure a set's backup folder exists before a run writes into it. The folder itself may be
 * created, but never the folders above it: a specific folder such as /mnt/usb/Backup whose
 * /mnt/usb is missing is a disk that is not mounted, and creating it would quietly fill the
 * server's own disk. `anchor` is the folder that must already exist: the folder's parent, or
 * the server root for a folder under it (the default <root>/Backup and its like).
 */
export async function ensureBackupFolder(
  folder: string,
  anchor: string,
  what: { set: string; key: string },
): Promise<void> {
  const st = await fs.stat(folder).catch((e: unknown) => {
    // ENOTDIR: a file stands where a folder above should be; the anchor check below names it.
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return undefined;
    throw fromOsError(e, { path: folder, doing: `backup folder of set ${what.set}` });
  });
  if (st?.isDirectory()) return;
  if (st) {
    throw new BschedError("IO", `backup folder ${folder} of set ${what.set} is not a folder`, {
      hint: `move that file away, or set ${what.key} to another folder`,
    });
  }
  const anchorSt = await fs.stat(anchor).catch(() => undefined);
  if (anchorSt && !anchorSt.isDirectory()) {
    throw new BschedError(
      "IO",
      `backup folder ${folder} of set ${what.set}: ${anchor} is a file, not a folder`,
      {
        hint: `move that file away, or fix ${what.key}`,
      },
    );
  }
  if (!anchorSt) {
    let missing = anchor;
    while (path.dirname(missing) !== missing && !(await exists(path.dirname(missing)))) {
      missing = path.dirname(missing);
    }
    throw new BschedError(
      "DESTINATION_MISSING",
      `backup folder ${folder} of set ${what.set}: ${anchor} does not exist` +
        (missing !== anchor ? ` (nor does ${missing})` : "") +
        // Said in the message too, not only the hint: the daemon's log and webhook carry the message.
        "; is the disk mounted? bsched never creates the folders above a backup folder",
      {
        hint: `is the disk mounted? mount it on ${anchor}, or create the folder (mkdir -p ${folder}), or fix ${what.key}`,
      },
    );
  }
  try {
    // One level at a time from the anchor down: a recursive mkdir reports ENOENT where the
    // disk said EROFS or EACCES, and the user must be told the real reason.
    const steps = path.relative(anchor, folder).split(path.sep).filter(Boolean);
    let dir = anchor;
    for (const step of steps) {
      dir = path.join(dir, step);
      await fs.mkdir(dir).catch((e: unknown) => {
        if (errnoCode(e) !== "EEXIST") throw e;
      });
    }
  } catch (e) {
    throw fromOsError(e, { path: folder, doing: `creating the backup folder of set ${what.set}` });
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}
