import { createHash } from "node:crypto";
import path from "node:path";
import { z } from "zod";
import { BschedError } from "../core/errors.ts";
import { BACKUP_MODES, BACKUP_TYPES, type BackupSummary, type Entry, type Manifest } from "../core/types.ts";
import { blockMapProblem } from "./blocks.ts";
import { isBackupName } from "./naming.ts";
import { checkRelativePath } from "./paths.ts";

export const MANIFEST_FILE = "manifest.json";
/**
 * The format this version writes: 3 made an incremental's manifest list only its changes
 * (`holds: "changes"`), 2 added block maps (entries' `blocks`); 1 and 2 are still read.
 */
export const CURRENT_FORMAT = 3;
/** Folder inside a separate backup that holds the copied files under their relative paths. */
export const FILES_DIR = "files";

const SHA256 = /^[0-9a-f]{64}$/;
const sha256Hex = z.string().regex(SHA256);
const backupName = z
  .string()
  .refine((n) => isBackupName(n), { message: "a backup name L_YYYY_MM_DD_HH_MM_SS" });

const ENTRY_KEYS = new Set([
  "path",
  "kind",
  "mode",
  "mtimeNs",
  "uid",
  "gid",
  "size",
  "sha256",
  "from",
  "target",
  "ino",
  "ctimeNs",
  "blocks",
]);
const NS = /^-?\d{1,25}$/;
const isUint = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * Why `e` is not a valid entry, or undefined when it is. Checked in place (a schema library
 * would copy every entry: tens of megabytes for a large tree); unknown keys are refused, a
 * newer format changes formatVersion.
 */
function entryProblem(e: unknown, version: number): string | undefined {
  if (e === null || typeof e !== "object" || Array.isArray(e)) return "an entry is not an object";
  const o = e as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!ENTRY_KEYS.has(k)) return `unknown key ${JSON.stringify(k)}`;
  if (typeof o.path !== "string") return "path is not a string";
  if (o.kind !== "file" && o.kind !== "dir" && o.kind !== "symlink")
    return `bad kind ${JSON.stringify(o.kind)}`;
  if (!isUint(o.mode) || (o.mode as number) > 0o7777) return "bad mode";
  if (typeof o.mtimeNs !== "string" || !NS.test(o.mtimeNs)) return "bad mtimeNs";
  if (!isUint(o.uid) || !isUint(o.gid)) return "bad uid or gid";
  if (o.size !== undefined && !isUint(o.size)) return "bad size";
  if (o.sha256 !== undefined && (typeof o.sha256 !== "string" || !SHA256.test(o.sha256))) return "bad sha256";
  if (o.from !== undefined && (typeof o.from !== "string" || !isBackupName(o.from))) return "bad from";
  if (o.target !== undefined && typeof o.target !== "string") return "bad target";
  if (o.ino !== undefined && typeof o.ino !== "string") return "bad ino";
  if (o.ctimeNs !== undefined && (typeof o.ctimeNs !== "string" || !NS.test(o.ctimeNs))) return "bad ctimeNs";
  if (o.blocks !== undefined) {
    if (version < 2 || o.kind !== "file" || !isUint(o.size))
      return "blocks on an entry that cannot have them";
    return blockMapProblem(o.blocks, o.size as number, (n) => isBackupName(n));
  }
  return undefined;
}

const warningSchema = z.object({ path: z.string(), code: z.string(), message: z.string() });

/** Everything but the entries and deletions: the manifest's first line, enough to list a backup. */
const headerSchema = z.object({
  format: z.literal("bsched-manifest"),
  formatVersion: z.number().int(),
  tool: z.object({ name: z.literal("bsched"), version: z.string() }),
  host: z.string(),
  set: z.string(),
  letter: z.string().regex(/^[A-Z]$/),
  name: backupName,
  type: z.enum(BACKUP_TYPES),
  mode: z.enum(BACKUP_MODES),
  // Format 3: whether the entries are the whole state or only the changes since the parent's.
  holds: z.enum(["state", "changes"]).optional(),
  timezone: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  parent: z.object({ name: backupName, digest: sha256Hex }).nullable(),
  // Optional and added after format 1 shipped: an older bsched drops it (zod strips unknown keys).
  root: z
    .object({
      mode: z.number().int().min(0).max(0o7777),
      mtimeNs: z.string().regex(NS),
      uid: z.number().int().min(0),
      gid: z.number().int().min(0),
    })
    .optional(),
  totals: z.object({
    files: z.number(),
    dirs: z.number(),
    symlinks: z.number(),
    bytes: z.number(),
    storedFiles: z.number(),
    storedBytes: z.number(),
    deletions: z.number(),
  }),
  warnings: z.array(warningSchema),
});

export type ManifestHeader = Omit<Manifest, "entries" | "deletions">;

/**
 * The manifest is one JSON document laid out so that its first line holds the header
 * (`{"header":{…},`), then one entry per line: `list` reads only the first line of each backup.
 */
export function serializeManifest(m: Manifest): string {
  const { entries, deletions, ...header } = m;
  const lines = [`{"header":${JSON.stringify(header)},`, `"entries":[`];
  for (let i = 0; i < entries.length; i++) {
    lines.push(JSON.stringify(entries[i]) + (i < entries.length - 1 ? "," : ""));
  }
  lines.push(`],`, `"deletions":${JSON.stringify(deletions)}}`, "");
  return lines.join("\n");
}

export function digestOf(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function invalid(file: string, why: string): BschedError {
  return new BschedError("MANIFEST_INVALID", `${file}: damaged or foreign manifest: ${why}`, {
    hint: "this backup cannot be trusted; run `bsched verify` and restore from another backup",
  });
}

function checkHeader(raw: unknown, file: string): ManifestHeader {
  const r = headerSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw invalid(file, `${i?.path.join(".")}: ${i?.message}`);
  }
  const v = r.data.formatVersion;
  if (v !== 1 && v !== 2 && v !== CURRENT_FORMAT) {
    throw new BschedError(
      "MANIFEST_INVALID",
      `${file}: manifest format version ${r.data.formatVersion} is not supported`,
      {
        hint: "it was written by a newer bsched; restore with that version",
      },
    );
  }
  // Format 3 says what its entries hold, and only an incremental can hold changes: nothing can
  // take a list of changes for a whole state. Before 3, every manifest was a whole state.
  const { name, letter, parent, holds, mode } = r.data;
  if (v >= 3 ? holds === undefined : holds !== undefined)
    throw invalid(file, v >= 3 ? "holds: missing" : `holds: not in format version ${v}`);
  if (holds === "changes" && mode !== "incremental")
    throw invalid(file, "holds: a full backup holds its state");
  // The letter is the first of the name's, and an incremental's parent is of the same set.
  if (!isBackupName(name, letter)) throw invalid(file, `it names backup ${name} but letter ${letter}`);
  if (parent && !isBackupName(parent.name, letter))
    throw invalid(file, `its parent ${parent.name} is not a backup of letter ${letter}`);
  return r.data as ManifestHeader;
}

/**
 * A manifest must lie in the folder named after its backup: a folder `D_…` holding the manifest
 * of another backup, set or letter (copied, renamed or forged) is refused, naming the folder.
 */
export function checkFolderName(header: ManifestHeader, dir: string): void {
  if (header.name !== path.basename(dir)) {
    throw invalid(
      path.join(dir, MANIFEST_FILE),
      `it names backup ${header.name} (set ${header.set}, letter ${header.letter}) but lies in folder ${path.basename(dir)}`,
    );
  }
}

/** Parse and validate an untrusted manifest; every path is checked for safety. */
export function parseManifest(text: string, file: string): Manifest {
  let raw: { header?: unknown; entries?: unknown; deletions?: unknown };
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalid(file, (e as Error).message);
  }
  const header = checkHeader(raw.header, file);
  if (!Array.isArray(raw.entries)) throw invalid(file, "entries: not a list");
  const entries = raw.entries as Entry[];
  const deletions = raw.deletions;
  if (!Array.isArray(deletions) || deletions.some((d) => typeof d !== "string")) {
    throw invalid(file, "deletions: not a list of paths");
  }
  const seen = new Set<string>();
  for (const e of entries) {
    const problem = entryProblem(e, header.formatVersion);
    if (problem) throw invalid(file, `entries: ${problem}`);
    checkRelativePath(e.path, file);
    if (seen.has(e.path)) throw invalid(file, `path listed twice: ${JSON.stringify(e.path)}`);
    seen.add(e.path);
    if (e.kind === "file" && (e.size === undefined || e.sha256 === undefined || e.from === undefined)) {
      throw invalid(file, `file ${JSON.stringify(e.path)} lacks size, sha256 or from`);
    }
    if (e.kind === "symlink" && e.target === undefined)
      throw invalid(file, `symlink ${JSON.stringify(e.path)} lacks its target`);
  }
  for (const d of deletions as string[]) checkRelativePath(d, file);
  return { ...header, entries, deletions: deletions as string[] };
}

/** Parse the first line of a manifest (`{"header":{…},`) on its own. */
export function parseHeaderLine(line: string, file: string): ManifestHeader {
  let raw: { header?: unknown };
  try {
    raw = JSON.parse(`${line.replace(/,\s*$/, "")}}`);
  } catch (e) {
    throw invalid(file, (e as Error).message);
  }
  return checkHeader(raw.header, file);
}

/** `diskBytes`: what the folder takes on disk (diskBytesOf in src/destination/backups.ts). */
export function summarize(header: ManifestHeader, dir: string, diskBytes: number): BackupSummary {
  return {
    name: header.name,
    path: dir,
    set: header.set,
    type: header.type,
    mode: header.mode,
    parent: header.parent?.name ?? null,
    files: header.totals.files,
    bytes: header.totals.bytes,
    warnings: header.warnings,
    startedAt: header.startedAt,
    finishedAt: header.finishedAt,
    storedFiles: header.totals.storedFiles,
    storedBytes: header.totals.storedBytes,
    diskBytes,
  };
}
