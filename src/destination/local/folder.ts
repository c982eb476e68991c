import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { BschedError, errnoCode } from "../../core/errors.ts";
import type { BackupRef } from "../../core/types.ts";
import { openRegular, readRegular } from "../../platform/fsutil.ts";
import { parseTempName } from "../../platform/names.ts";
import { fromOsError } from "../../platform/os-errors.ts";
import { assessChains, type ChainLink, type Restorability } from "../../snapshot/chain.ts";
import {
  checkFolderName,
  digestOf,
  MANIFEST_FILE,
  type ManifestHeader,
  parseHeaderLine,
  readManifest,
  readManifestHeader,
} from "../../snapshot/manifest.ts";
import { isBackupName } from "../../snapshot/naming.ts";

/** A complete backup as seen from its folder's header line, without reading its entries. */
export interface FoundBackup {
  name: string;
  path: string;
  header: ManifestHeader;
}

export interface FolderListing {
  backups: FoundBackup[];
  /** Folders named like backups of this letter that have no readable manifest: never used. */
  /** `foreignSet`: the manifest is whole but of another set (a renamed set, or a forged folder). */
  incomplete: { name: string; path: string; reason: string; code?: string; foreignSet?: string }[];
}

export function byAge(a: FoundBackup, b: FoundBackup): number {
  return a.header.startedAt < b.header.startedAt
    ? -1
    : a.header.startedAt > b.header.startedAt
      ? 1
      : a.name < b.name
        ? -1
        : 1;
}

/** The complete backups of one letter (and set, when given) in a backup folder, oldest first. */
export async function listFolder(folder: string, letter: string, set?: string): Promise<FolderListing> {
  let names: string[];
  try {
    names = await fs.readdir(folder);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return { backups: [], incomplete: [] };
    throw e;
  }
  const backups: FoundBackup[] = [];
  const incomplete: FolderListing["incomplete"] = [];
  await Promise.all(
    names
      .filter((n) => isBackupName(n, letter))
      .map(async (name) => {
        const dir = path.join(folder, name);
        try {
          const header = await readManifestHeader(dir);
          checkFolderName(header, dir);
          // Letters are unique among the sets, so a folder of this letter naming another set is
          // foreign or forged: shown as not usable, never silently skipped nor used.
          if (set !== undefined && header.set !== set) {
            incomplete.push({
              name,
              path: dir,
              reason: `${path.join(dir, MANIFEST_FILE)}: its manifest is of set ${header.set}, but letter ${letter} is set ${set}'s`,
              code: "MANIFEST_INVALID",
              foreignSet: header.set,
            });
            return;
          }
          backups.push({ name, path: dir, header });
        } catch (e) {
          if (errnoCode(e) === "ENOTDIR") return;
          const code = e instanceof BschedError ? e.code : errnoCode(e);
          incomplete.push({ name, path: dir, reason: (e as Error).message, code });
        }
      }),
  );
  backups.sort(byAge);
  incomplete.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { backups, incomplete };
}

/** A backup folder of the set with its restorability (`bsched list`, `status`, `prune`). */
export type AssessedBackup = {
  name: string;
  path: string;
  header: ManifestHeader | undefined;
  /** A whole manifest of another set under this set's letter: maybe a renamed set's backup. */
  foreignSet?: string;
} & Restorability;

/**
 * The last bytes of a manifest as written (serializeManifest): a file cut short after its
 * header line still parses as a header, so its end is checked too (a few bytes, cheap).
 */
async function endsLikeManifest(dir: string): Promise<boolean> {
  // A regular file only (a link or FIFO in a backup folder is damage, never followed or waited on).
  const fh = await openRegular(path.join(dir, MANIFEST_FILE));
  try {
    const { size } = await fh.stat();
    const tail = Buffer.alloc(2);
    const { bytesRead } = await fh.read(tail, 0, 2, Math.max(0, size - 2));
    return bytesRead === 2 && tail.toString("latin1") === "}\n";
  } finally {
    await fh.close();
  }
}

async function digestOfFile(file: string): Promise<string> {
  const h = createHash("sha256");
  const fh = await openRegular(file);
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return h.digest("hex");
}

/** A short reason for a manifest that could not be read (the folder is named beside it anyway). */
function unreadableReason(why: string): string {
  if (/ENOENT/.test(why)) return "manifest missing";
  return `manifest unreadable (${why.replace(/^.*manifest\.json: (damaged or foreign manifest: )?/, "")})`;
}

/**
 * Every folder of the set named like a backup, oldest first, each `ok` or `broken` with the
 * reason. Cheap: header lines and manifest ends, plus one hash of each manifest that another
 * backup names as its parent (to see a parent altered or replaced); never the entries.
 * Folders whose manifest is missing or unreadable come last, broken (their time is unknown).
 */
export async function assessFolder(folder: string, letter: string, set?: string): Promise<AssessedBackup[]> {
  const { backups, incomplete } = await listFolder(folder, letter, set);
  const parents = new Set(backups.flatMap((b) => (b.header.parent ? [b.header.parent.name] : [])));
  const facts = await Promise.all(
    backups.map(async (b) => {
      const file = path.join(b.path, MANIFEST_FILE);
      const whole = await endsLikeManifest(b.path).catch(() => false);
      let damaged = whole ? undefined : "manifest damaged (cut short)";
      let digest: string | undefined;
      if (whole && parents.has(b.name))
        digest = await digestOfFile(file).catch((e: Error) => {
          // Unreadable now: its children cannot be checked against it, so nothing counts on it.
          damaged = `manifest unreadable (${e.message})`;
          return undefined;
        });
      return { name: b.name, mode: b.header.mode, parent: b.header.parent, damaged, digest };
    }),
  );
  const states = assessChains([
    ...facts,
    ...incomplete.map((i) => ({
      name: i.name,
      damaged:
        i.foreignSet === undefined
          ? unreadableReason(i.reason)
          : `a backup of set ${i.foreignSet}, not of this set (a renamed set? restore it with --from)`,
    })),
  ]);
  const stateOf = (name: string): Restorability =>
    states.get(name) ?? { state: "broken", reason: "manifest unreadable" };
  return [
    ...backups.map((b) => ({ name: b.name, path: b.path, header: b.header, ...stateOf(b.name) })),
    ...incomplete.map((i) => ({
      name: i.name,
      path: i.path,
      header: undefined,
      ...stateOf(i.name),
      ...(i.foreignSet === undefined ? {} : { foreignSet: i.foreignSet }),
    })),
  ];
}

/**
 * The bytes a backup takes on disk (issue 9: a 97 KB `.sh` was reported as 2.15 GB): the regular
 * files at its top (the compressed type's `<name>.sh`, `manifest.json`) by their size, plus, for
 * the separate type, the files it stores under `files/`. Those are byte copies, so their sizes
 * are the manifest's `storedBytes`: taken from there rather than by a stat of each of possibly
 * thousands of files, which `list` and `status` would pay on every call.
 */
export async function diskBytesOf(
  dir: string,
  header: Pick<ManifestHeader, "type" | "totals">,
): Promise<number> {
  let n = header.type === "separate" ? header.totals.storedBytes : 0;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return n;
    throw e;
  }
  for (const name of names) {
    const st = await fs.lstat(path.join(dir, name)).catch(() => undefined);
    if (st?.isFile()) n += st.size;
  }
  return n;
}

/**
 * One backup of a chain, with the digest of its manifest; undefined when the folder or its
 * manifest is missing (a damaged manifest is an error that names it).
 */
export async function loadLink(folder: string, name: string): Promise<ChainLink | undefined> {
  if (!isBackupName(name)) return undefined;
  const dir = path.join(folder, name);
  const file = path.join(dir, MANIFEST_FILE);
  let bytes: Buffer;
  try {
    bytes = await readRegular(file);
  } catch (e) {
    const code = errnoCode(e);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw e;
  }
  const nl = bytes.indexOf(10);
  const header = parseHeaderLine(bytes.subarray(0, nl < 0 ? bytes.length : nl).toString("utf8"), file);
  checkFolderName(header, dir);
  return { name, path: dir, header, digest: digestOf(bytes) };
}

export type { BackupRef };
export { readManifest };

/**
 * Remove what a crashed run of this letter left: temporary folders `.<L>_….tmp-*`. Only the
 * holder of the set's lock calls this, so no live run can own them.
 */
export async function removeLeftovers(folder: string, letter: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(folder);
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return [];
    throw e;
  }
  const removed: string[] = [];
  for (const n of names) {
    const t = parseTempName(n);
    if (t && isBackupName(t.base, letter)) {
      await fs.rm(path.join(folder, n), { recursive: true, force: true });
      removed.push(n);
    }
  }
  return removed;
}

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
