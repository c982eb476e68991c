import { constants as C } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { writeAll } from "../platform/copy.ts";
import { RESTORED_MARKER, RESTORED_MARKER_TMP } from "../platform/names.ts";

/**
 * The marker a restore leaves in its target: the set, the backup the folder is now at and that
 * backup's manifest digest. Same text as a self-extracting file's `--target` writes, so the
 * manual procedure (`sh NEXT.sh --target DIR`) can go on after a bsched restore.
 */
export function markerText(set: string, backup: string, digest: string): string {
  return `# bsched: this folder holds the state of this backup (an incremental's --target checks it)\nset=${set}\nbackup=${backup}\ndigest=${digest}\n`;
}

/** Written under a temporary name, synced and renamed: a marker is whole or absent. */
export async function writeRestoredMarker(target: string, set: string, backup: string, digest: string) {
  const tmp = path.join(target, RESTORED_MARKER_TMP);
  const fh = await fs.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o644);
  try {
    await writeAll(fh, Buffer.from(markerText(set, backup, digest)), 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, path.join(target, RESTORED_MARKER));
}

/** Before a restore changes a folder; a target that does not exist yet (or is no folder) has none. */
export async function removeRestoredMarker(target: string): Promise<void> {
  await fs.rm(path.join(target, RESTORED_MARKER), { force: true }).catch(() => undefined);
}
