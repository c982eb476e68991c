import { randomBytes } from "node:crypto";

/**
 * Every name bsched gives its own lock files, temporary folders and markers, made and recognized
 * here only: a sweep that removes leftovers must match exactly what a writer created, and a
 * folder scan must skip exactly bsched's own files. Changing a name here changes what is on
 * disk (docs/design.md "Names bsched gives its own files").
 */

const HEX = "[0-9a-f]+";

/** A fresh suffix, unique among live processes: `PID-HEX`. */
function ownSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** `.<base>.tmp-PID-HEX`: a file or folder being written, renamed to `base` once complete. */
export function tempName(base: string): string {
  return `.${base}.tmp-${ownSuffix()}`;
}

const TEMP_RE = new RegExp(`^\\.(.+)\\.tmp-(\\d+)-${HEX}$`);

/** The final name and writer's pid of a `tempName`, or undefined for any other name. */
export function parseTempName(name: string): { base: string; pid: number } | undefined {
  const m = TEMP_RE.exec(name);
  return m?.[1] && m[2] ? { base: m[1], pid: Number(m[2]) } : undefined;
}

/** `.<base>.deleting-PID-HEX`: a backup being removed (renamed away first, so never listed half-deleted). */
export function deletingName(base: string): string {
  return `.${base}.deleting-${ownSuffix()}`;
}

const DELETING_RE = new RegExp(`^\\.(.+)\\.deleting-\\d+-${HEX}$`);

/** The backup name of a `deletingName`, or undefined for any other name. */
export function parseDeletingName(name: string): string | undefined {
  return DELETING_RE.exec(name)?.[1];
}

/** A set's run lock in its backup folder, `.bsched-<set>.lock`: no two runs of a set at once. */
export function runLockName(setId: string): string {
  return `.bsched-${setId}.lock`;
}

export function isRunLockName(name: string): boolean {
  return /^\.bsched-.+\.lock$/.test(name);
}

/**
 * The lock file bsched keeps in a set's source folder (backup) or a restore's target folder for
 * as long as it works there (docs/live-databases.md "The lock file").
 */
export const SET_LOCK_NAME = ".bsched-lock";

/** What acquireLock renames a stale lock `file` to before taking it over. */
export function staleLockName(file: string): string {
  return `${file}.stale-${randomBytes(4).toString("hex")}`;
}

/** Our lock file and the names acquireLock gives a stale one it moves aside: never backed up. */
export function isSetLockName(rel: string): boolean {
  return rel === SET_LOCK_NAME || rel.startsWith(`${SET_LOCK_NAME}.stale-`);
}

/**
 * The file a restore leaves in its target (bsched restore and a self-extracting file's --target)
 * naming the backup the folder is now at: a later incremental `.sh` applies only onto its parent.
 * The self-extracting script writes it too (format/compressed/header.ts uses this constant).
 */
export const RESTORED_MARKER = ".bsched-restored";

/** The marker's name while it is written (then synced and renamed). */
export const RESTORED_MARKER_TMP = `${RESTORED_MARKER}.tmp`;

/** bsched's own files in a source or target folder (at its top): never backed up, not content. */
export function isOwnFileName(rel: string): boolean {
  return isSetLockName(rel) || rel === RESTORED_MARKER || rel.startsWith(RESTORED_MARKER_TMP);
}

/** Prefix of the staging folders of restores into `targetBase`, beside the target: `.<name>.bsched-restore-`. */
export function restoreStagingPrefix(targetBase: string): string {
  return `.${targetBase}.bsched-restore-`;
}

/** `.<name>.bsched-restore-PID-HEX`: where a restore into the empty folder `<name>` is built. */
export function restoreStagingName(targetBase: string): string {
  return `${restoreStagingPrefix(targetBase)}${ownSuffix()}`;
}

/** A staging folder of a restore into `targetBase` (any process's). */
export function isRestoreStagingOf(name: string, targetBase: string): boolean {
  return name.startsWith(restoreStagingPrefix(targetBase));
}

/** The daemon's lock in the state folder: one daemon per state folder. */
export const DAEMON_LOCK = "daemon.lock";

/**
 * The daemon's control socket in the state folder (mode 0600): a manual `bsched backup` submits
 * to the daemon's queue through it. A socket left by a killed daemon is removed by the next one.
 */
export const DAEMON_SOCKET = "daemon.sock";

/** The secret store in the state folder (docs/design.md "Secrets"): names in clear, values encrypted, 0600. */
export const SECRET_STORE = "secrets.json";

/** The store's key in the state folder when the environment supplies none: 32 bytes as hex, 0600. */
export const SECRET_KEY_FILE = "secret.key";

/** The lock a change of the secret store holds (readers need none: the store is replaced whole). */
export const SECRET_STORE_LOCK = "secrets.lock";

/** The window's users in the state folder (docs/design.md "Security"): names and scrypt hashes, 0600. */
export const USERS_FILE = "users.json";

/** The lock a change of the users file holds (readers need none: the file is replaced whole). */
export const USERS_LOCK = "users.lock";

/** Where the running daemon's window is (`{url, pid}`), for `bsched status`: written at its start, removed at its stop. */
export const WINDOW_FILE = "window.json";

/** The state folder's notification counts (src/notify/repeats.ts) and when the last digest went. */
export const NOTIFY_STATE = "notify.json";

/**
 * A restore drill's own folder in the scratch folder (issue 14), `bsched-drill-<set>-PID-HEX`:
 * removed when the drill ends; one whose process is gone (a crash, a kill) is removed by the next
 * drill that uses the scratch folder. Not hidden: whoever looks in the scratch folder sees it.
 */
export function drillScratchName(setId: string): string {
  return `bsched-drill-${setId}-${ownSuffix()}`;
}

const DRILL_SCRATCH_RE = new RegExp(`^bsched-drill-(.+)-(\\d+)-${HEX}$`);

/** The set and pid of a `drillScratchName`, or undefined for any other name. */
export function parseDrillScratchName(name: string): { set: string; pid: number } | undefined {
  const m = DRILL_SCRATCH_RE.exec(name);
  return m?.[1] && m[2] ? { set: m[1], pid: Number(m[2]) } : undefined;
}
