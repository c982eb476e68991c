import { createHash } from "node:crypto";
import { BschedError, errnoCode } from "../core/errors.ts";
import type { BackupRef, Manifest } from "../core/types.ts";
import { assessChains, type ChainLink, type Restorability } from "../snapshot/chain.ts";
import {
  checkFolderName,
  digestOf,
  MANIFEST_FILE,
  type ManifestHeader,
  parseHeaderLine,
  parseManifest,
} from "../snapshot/manifest.ts";
import { isBackupName } from "../snapshot/naming.ts";
import { firstNeeded, stateOf } from "../snapshot/state.ts";
import type { Destination } from "./destination.ts";

/**
 * A set's backups on any Destination, read through its interface only (docs/design.md
 * "Destinations"): listing reads header lines, assessing adds manifest ends and the digests of
 * manifests named as parents; a chain link and a whole manifest are read on demand.
 */

/** A complete backup as seen from its header line, without reading its entries. */
export interface FoundBackup {
  name: string;
  /** Where it is, for messages and records: dest.locationOf(name). */
  path: string;
  dest: Destination;
  header: ManifestHeader;
}

export interface BackupListing {
  backups: FoundBackup[];
  /** Entries named like backups of this letter that have no readable manifest: never used. */
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

/** Read only the header line of a backup's manifest (cheap: for listing). */
export async function readManifestHeader(dest: Destination, name: string): Promise<ManifestHeader> {
  const file = dest.locationOf(name, MANIFEST_FILE);
  const h = await dest.open(name, MANIFEST_FILE);
  try {
    const chunks: Buffer[] = [];
    let pos = 0;
    for (;;) {
      const buf = Buffer.alloc(64 * 1024);
      const n = await h.read(buf, 0, buf.length, pos);
      if (n === 0) break;
      const piece = buf.subarray(0, n);
      const nl = piece.indexOf(10);
      if (nl >= 0) {
        chunks.push(piece.subarray(0, nl));
        break;
      }
      chunks.push(piece);
      pos += n;
    }
    return parseHeaderLine(Buffer.concat(chunks).toString("utf8"), file);
  } finally {
    await h.close();
  }
}

/** The complete backups of one letter (and set, when given) on a destination, oldest first. */
export async function listBackups(dest: Destination, letter: string, set?: string): Promise<BackupListing> {
  const names = await dest.names();
  const backups: FoundBackup[] = [];
  const incomplete: BackupListing["incomplete"] = [];
  await Promise.all(
    names
      .filter((n) => isBackupName(n, letter))
      .map(async (name) => {
        const at = dest.locationOf(name);
        try {
          const header = await readManifestHeader(dest, name);
          checkFolderName(header, at);
          // Letters are unique among the sets, so a folder of this letter naming another set is
          // foreign or forged: shown as not usable, never silently skipped nor used.
          if (set !== undefined && header.set !== set) {
            incomplete.push({
              name,
              path: at,
              reason: `${dest.locationOf(name, MANIFEST_FILE)}: its manifest is of set ${header.set}, but letter ${letter} is set ${set}'s`,
              code: "MANIFEST_INVALID",
              foreignSet: header.set,
            });
            return;
          }
          backups.push({ name, path: at, dest, header });
        } catch (e) {
          // A file named like a backup (not a folder): not a backup, not damage.
          if (errnoCode(e) === "ENOTDIR") return;
          const code = e instanceof BschedError ? e.code : errnoCode(e);
          incomplete.push({ name, path: at, reason: (e as Error).message, code });
        }
      }),
  );
  backups.sort(byAge);
  incomplete.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { backups, incomplete };
}

/** A backup of the set with its restorability (`bsched list`, `status`, `prune`). */
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
async function endsLikeManifest(dest: Destination, name: string): Promise<boolean> {
  // A regular file only (a link or FIFO in a backup folder is damage, never followed or waited on).
  const h = await dest.open(name, MANIFEST_FILE);
  try {
    const tail = Buffer.alloc(2);
    const n = await h.read(tail, 0, 2, Math.max(0, h.size - 2));
    return n === 2 && tail.toString("latin1") === "}\n";
  } finally {
    await h.close();
  }
}

async function digestOfFile(dest: Destination, name: string, file: string): Promise<string> {
  const hash = createHash("sha256");
  const h = await dest.open(name, file);
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (let pos = 0; ; ) {
      const n = await h.read(buf, 0, buf.length, pos);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    await h.close();
  }
  return hash.digest("hex");
}

/** A stored file whole, read through its handle (a manifest: up to tens of megabytes). */
export async function readWhole(dest: Destination, name: string, file: string): Promise<Buffer> {
  const h = await dest.open(name, file);
  try {
    const parts: Buffer[] = [];
    let pos = 0;
    for (;;) {
      // Its size, plus one byte to see the end in the same read (a file that grew is read on).
      const buf = Buffer.allocUnsafe(Math.max(64 * 1024, h.size - pos + 1));
      const n = await h.read(buf, 0, buf.length, pos);
      if (n === 0) break;
      parts.push(buf.subarray(0, n));
      pos += n;
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  } finally {
    await h.close();
  }
}

/** A short reason for a manifest that could not be read (the folder is named beside it anyway). */
function unreadableReason(why: string): string {
  if (/ENOENT/.test(why)) return "manifest missing";
  return `manifest unreadable (${why.replace(/^.*manifest\.json: (damaged or foreign manifest: )?/, "")})`;
}

/**
 * Every backup of the set (named like one), oldest first, each `ok` or `broken` with the
 * reason. Cheap: header lines and manifest ends, plus one hash of each manifest that another
 * backup names as its parent (to see a parent altered or replaced); never the entries.
 * Backups whose manifest is missing or unreadable come last, broken (their time is unknown).
 */
export async function assessBackups(
  dest: Destination,
  letter: string,
  set?: string,
): Promise<AssessedBackup[]> {
  const { backups, incomplete } = await listBackups(dest, letter, set);
  const parents = new Set(backups.flatMap((b) => (b.header.parent ? [b.header.parent.name] : [])));
  const facts = await Promise.all(
    backups.map(async (b) => {
      const whole = await endsLikeManifest(dest, b.name).catch(() => false);
      let damaged = whole ? undefined : "manifest damaged (cut short)";
      let digest: string | undefined;
      if (whole && parents.has(b.name))
        digest = await digestOfFile(dest, b.name, MANIFEST_FILE).catch((e: Error) => {
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
  dest: Destination,
  name: string,
  header: Pick<ManifestHeader, "type" | "totals">,
): Promise<number> {
  let n = header.type === "separate" ? header.totals.storedBytes : 0;
  for (const f of await dest.topFiles(name)) n += f.size;
  return n;
}

/**
 * One backup of a chain, with the digest of its manifest; undefined when the backup or its
 * manifest is missing (a damaged manifest is an error that names it).
 */
export async function loadLink(dest: Destination, name: string): Promise<ChainLink | undefined> {
  return (await loadLinkAndBytes(dest, name))?.link;
}

/**
 * loadLink, with the manifest's bytes it read: the backup being restored parses its whole
 * manifest from them, so a remote one is not read twice.
 */
export async function loadLinkAndBytes(
  dest: Destination,
  name: string,
): Promise<{ link: ChainLink; bytes: Buffer } | undefined> {
  if (!isBackupName(name)) return undefined;
  const file = dest.locationOf(name, MANIFEST_FILE);
  let bytes: Buffer;
  try {
    bytes = await readWhole(dest, name, MANIFEST_FILE);
  } catch (e) {
    const code = errnoCode(e);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw e;
  }
  const nl = bytes.indexOf(10);
  const header = parseHeaderLine(bytes.subarray(0, nl < 0 ? bytes.length : nl).toString("utf8"), file);
  checkFolderName(header, dest.locationOf(name));
  return { link: { name, dest, header, digest: digestOf(bytes) }, bytes };
}

/** A backup's whole manifest, parsed and checked, with its digest. */
export async function readManifest(dest: Destination, name: string): Promise<BackupRef> {
  return manifestRef(dest, name, await readWhole(dest, name, MANIFEST_FILE));
}

/** A backup's manifest parsed and checked from its bytes, with their digest. */
function manifestRef(dest: Destination, name: string, bytes: Buffer): BackupRef {
  const at = dest.locationOf(name);
  const manifest = parseManifest(bytes.toString("utf8"), dest.locationOf(name, MANIFEST_FILE));
  checkFolderName(manifest, at);
  return { name: manifest.name, path: at, manifest, digest: digestOf(bytes) };
}

/**
 * The state of a chain's newest backup (src/snapshot/state.ts), the chain oldest first: its
 * manifest and, when that lists only changes, its ancestors' back to the newest holding a whole
 * state; each ancestor's bytes must have the digest its child recorded, or the chain is broken
 * there (CHAIN_BROKEN naming it). `newest`: the newest's manifest when already read; a link's
 * `manifest`: one read from elsewhere (a lone self-extracting file's payload); a link's `bytes`:
 * its manifest's bytes, kept when its digest was taken, so a manifest is never read twice.
 */
export async function readState(
  chain: (ChainLink & { manifest?: Manifest; bytes?: Buffer })[],
  newest?: Manifest,
): Promise<Manifest> {
  const last = chain.length - 1;
  const from = newest && newest.holds !== "changes" ? last : firstNeeded(chain.map((l) => l.header));
  const manifests = await Promise.all(
    chain.slice(from).map(async (link, k) => {
      const i = from + k;
      if (i === last && newest) return newest;
      if (link.manifest) return link.manifest;
      const child = chain[i + 1];
      let ref: BackupRef;
      try {
        ref = link.bytes
          ? manifestRef(link.dest, link.name, link.bytes)
          : await readManifest(link.dest, link.name);
        // Parsed: the bytes need not live as long as the chain does (a restore's whole run).
        link.bytes = undefined;
      } catch (e) {
        throw new BschedError(
          "CHAIN_BROKEN",
          `backup ${chain[last]?.name} needs the manifest of ${link.name}, which cannot be read: ${(e as Error).message}`,
          { hint: "restore from an older complete chain, or copy a sound folder of that backup beside it" },
        );
      }
      const want = child ? child.header.parent?.digest : link.digest;
      if (want && ref.digest !== want)
        throw new BschedError(
          "CHAIN_BROKEN",
          `backup ${child?.name ?? link.name}: the manifest of ${link.name} changed since its chain was checked (manifest digest differs)`,
          { hint: "the backup was altered or replaced; restore from an older complete chain" },
        );
      return ref.manifest;
    }),
  );
  return stateOf(manifests);
}
