import path from "node:path";
import type { SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import type { Manifest } from "../core/types.ts";
import { assessBackups, listBackups, loadLink, loadLinkAndBytes, readState } from "../destination/backups.ts";
import { describeDestination, OWN_FOLDER_NAME } from "../destination/by-name.ts";
import type { Destination } from "../destination/destination.ts";
import { destinationOf } from "../destination/for-set.ts";
import { backupAtPath } from "../destination/local/at-path.ts";
import { LocalDestination } from "../destination/local/local.ts";
import { payloadOf, readSelfExtractingHeader } from "../format/compressed/header.ts";
import { type ChainLink, resolveChain } from "../snapshot/chain.ts";
import { checkFolderName, digestOf, MANIFEST_FILE, parseManifest } from "../snapshot/manifest.ts";
import { isBackupName } from "../snapshot/naming.ts";
import { holdsChanges } from "../snapshot/state.ts";

export interface LocatedChain {
  /** Where the chain's parents are found (a lone file's link reads from its own one-file destination). */
  dest: Destination;
  chain: ChainLink[];
  /** The state of the chain's newest backup (src/snapshot/state.ts), whatever its manifest lists. */
  manifest: Manifest;
}

/**
 * A backup of a chain beside another: its folder, or else its self-extracting file lying alone
 * (copied to a USB disk without its folder), whose manifest is the payload's first member.
 */
export async function loadBeside(
  dest: Destination,
  name: string,
  keepBytes = false,
): Promise<(ChainLink & { manifest?: Manifest; bytes?: Buffer }) | undefined> {
  const found = await loadLinkAndBytes(dest, name);
  if (found) return keepBytes ? { ...found.link, bytes: found.bytes } : found.link;
  if (!isBackupName(name)) return undefined;
  const lone = await dest.loneFile?.(name);
  return lone ? loneFileLink(lone, name) : undefined;
}

/** The link of a self-extracting file found alone: its manifest is the payload's first member. */
async function loneFileLink(lone: Destination, name: string): Promise<ChainLink & { manifest: Manifest }> {
  const { readEmbeddedManifest } = await import("../format/compressed/reader.ts");
  const file = payloadOf(lone, name);
  const bytes = await readEmbeddedManifest(file);
  const manifest = parseManifest(bytes.toString("utf8"), file.label);
  const { entries: _e, deletions: _d, ...header } = manifest;
  return { name: manifest.name, dest: lone, header, digest: digestOf(bytes), manifest };
}

/**
 * resolveChain, keeping on each link the manifest bytes the newest's state is made of
 * (src/snapshot/state.ts): while the links walked back from the newest list only changes, each
 * parent's bytes, read once for its digest, stay on its link for readState, so no manifest is read
 * twice (a remote one is read once). Past the newest link holding a whole state nothing is kept:
 * a long chain of older whole-state manifests (formats 1 and 2) costs no memory.
 */
function resolveKeeping(
  newest: ChainLink,
  load: (name: string, keep: boolean) => Promise<(ChainLink & { bytes?: Buffer }) | undefined>,
): Promise<ChainLink[]> {
  let keep = holdsChanges(newest.header);
  return resolveChain(newest, async (name) => {
    const link = await load(name, keep);
    keep = keep && link !== undefined && holdsChanges(link.header);
    return link;
  });
}

async function chainAt(dest: Destination, name: string): Promise<LocatedChain> {
  const found = await loadLinkAndBytes(dest, name);
  if (!found) {
    throw new BschedError(
      "BACKUP_NOT_FOUND",
      `${dest.locationOf(name)} is not a complete backup (no manifest.json)`,
      {
        hint: "an interrupted run leaves no manifest; pick another backup (`bsched list`)",
      },
    );
  }
  const chain = await resolveKeeping(found.link, (n, keep) => loadBeside(dest, n, keep));
  // Parsed whole from the bytes already read (a remote manifest is read once), after the chain's
  // checks as before.
  const file = dest.locationOf(name, MANIFEST_FILE);
  const manifest = parseManifest(found.bytes.toString("utf8"), file);
  checkFolderName(manifest, dest.locationOf(name));
  return { dest, chain, manifest: await readState(chain, manifest) };
}

/**
 * The chain of a set's backup NAME, or of its newest backup, on the set's destination (or
 * `destination`, which overrides it).
 */
export async function locateForSet(
  set: SetConfig,
  name?: string,
  destination?: Destination,
): Promise<LocatedChain> {
  const dest = destination ?? destinationOf(set);
  const { backups, incomplete } = await listBackups(dest, set.letter, set.id);
  const pick = name === undefined ? backups.at(-1) : backups.find((b) => b.name === name);
  const unusable = name === undefined ? undefined : incomplete.find((i) => i.name === name);
  if (!pick && unusable && unusable.code !== "ENOENT") {
    throw new BschedError("MANIFEST_INVALID", `${unusable.path} cannot be used: ${unusable.reason}`, {
      hint: "this backup cannot be trusted; run `bsched verify` and restore from another backup",
    });
  }
  // Another destination than the set's own folder (`--dest NAME`): messages and hints name it.
  const other = dest.name !== OWN_FOLDER_NAME;
  const listCmd = `bsched list ${set.id}${other ? ` --dest ${dest.name}` : ""}`;
  if (!pick) {
    throw new BschedError(
      "BACKUP_NOT_FOUND",
      other
        ? name === undefined
          ? `set "${set.id}" has no complete backup on ${describeDestination(dest)}`
          : `backup ${name} not found on ${describeDestination(dest)}`
        : name === undefined
          ? `set "${set.id}" has no complete backup in ${dest.where}`
          : `set "${set.id}" has no backup ${name} in ${dest.where}`,
      {
        hint: other
          ? `\`${listCmd}\` shows what it holds; \`bsched list ${set.id}\` what the set's own folder holds`
          : name === undefined
            ? `make one with \`bsched backup ${set.id}\``
            : `see \`${listCmd}\``,
      },
    );
  }
  try {
    return await chainAt(dest, pick.name);
  } catch (e) {
    if (!(e instanceof BschedError)) throw e;
    // A chain's errors name backups, not where they are: on another destination, say which.
    const message =
      other && !e.message.includes(dest.where) ? `on ${describeDestination(dest)}: ${e.message}` : e.message;
    // The newest cannot be restored: never fall back silently (older data), but name the
    // newest one that can, so the person chooses knowingly.
    const ok =
      name === undefined
        ? (await assessBackups(dest, set.letter, set.id)).filter((b) => b.state === "ok").at(-1)
        : undefined;
    if (!ok && message === e.message) throw e;
    // A chain incomplete on a copy: the set's own folder may still have what it lacks.
    const resend =
      other && e.code === "CHAIN_BROKEN"
        ? `while the set's own folder still holds the chain, \`bsched copy ${set.id} --to ${dest.name}\` sends what the destination lacks`
        : undefined;
    throw new BschedError(e.code, message, {
      hint: ok
        ? `the newest restorable backup of set "${set.id}" is ${ok.name}: add \`--backup ${ok.name}\` (\`${listCmd}\` shows every backup's state)${resend ? `; or, ${resend}` : ""}`
        : (resend ?? e.hint),
      exitCode: e.exitCode,
      cause: e,
    });
  }
}

/**
 * The chain of the backup folder at `p`, its parents found beside it; no config needed. `p` may
 * also be a self-extracting file, in its folder or alone (then read as a one-file destination).
 */
export async function locateFromPath(p: string): Promise<LocatedChain> {
  const abs = path.resolve(p.replace(/\/+$/, ""));
  const at = await backupAtPath(abs);
  if (!at)
    throw new BschedError("BACKUP_NOT_FOUND", `${abs} does not exist`, {
      hint: "give the path of a backup folder",
    });
  // The path given may be a link (to a backup folder or file): the user's choice. What lies
  // inside a backup folder is never followed.
  const dir = path.dirname(abs);
  if (at.kind === "folder") return chainAt(new LocalDestination(dir), path.basename(abs));
  // A self-extracting file: in its own folder, or alone (then read at its real path). Its header
  // is read as a regular file only: a FIFO given here is refused, never waited on.
  const lone = at.lone;
  const { name } = await readSelfExtractingHeader({ label: lone.file, open: () => lone.openFile() });
  if (path.basename(dir) === name) {
    const parent = new LocalDestination(path.dirname(dir));
    if (await loadLink(parent, name)) return chainAt(parent, name);
  }
  const link = await loneFileLink(lone, name);
  const beside = new LocalDestination(dir);
  const chain = await resolveKeeping(link, (n, keep) => loadBeside(beside, n, keep));
  return { dest: beside, chain, manifest: await readState(chain, link.manifest) };
}
