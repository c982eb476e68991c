import fs from "node:fs/promises";
import path from "node:path";
import type { SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import type { Manifest } from "../core/types.ts";
import { assessFolder, listFolder, loadLink, readManifest } from "../destination/local/folder.ts";
import { readSelfExtractingHeader } from "../format/compressed/header.ts";
import { selfExtractingName } from "../format/compressed/names.ts";
import { type ChainLink, resolveChain } from "../snapshot/chain.ts";
import { digestOf, parseManifest } from "../snapshot/manifest.ts";
import { isBackupName } from "../snapshot/naming.ts";

export interface LocatedChain {
  folder: string;
  chain: ChainLink[];
  manifest: Manifest;
}

/**
 * A backup of a chain beside another: its folder, or else its self-extracting file lying alone
 * (copied to a USB disk without its folder), whose manifest is the payload's first member.
 */
export async function loadBeside(
  dir: string,
  name: string,
): Promise<(ChainLink & { manifest?: Manifest }) | undefined> {
  const link = await loadLink(dir, name);
  if (link || !isBackupName(name)) return link;
  const file = path.join(dir, selfExtractingName(name));
  const st = await fs.stat(file).catch(() => undefined);
  // The file found may be a link an administrator made (as a backup folder may be): it is read
  // at its real path, where nothing is followed any more.
  return st?.isFile() ? loneFileLink(await fs.realpath(file)) : undefined;
}

async function loneFileLink(file: string): Promise<ChainLink & { manifest: Manifest }> {
  const { readEmbeddedManifest } = await import("../format/compressed/reader.ts");
  const bytes = await readEmbeddedManifest(file);
  const manifest = parseManifest(bytes.toString("utf8"), file);
  const { entries: _e, deletions: _d, ...header } = manifest;
  return {
    name: manifest.name,
    path: path.dirname(file),
    header,
    digest: digestOf(bytes),
    payload: file,
    manifest,
  };
}

async function chainAt(folder: string, name: string): Promise<LocatedChain> {
  const link = await loadLink(folder, name);
  if (!link) {
    throw new BschedError(
      "BACKUP_NOT_FOUND",
      `${path.join(folder, name)} is not a complete backup (no manifest.json)`,
      {
        hint: "an interrupted run leaves no manifest; pick another backup (`bsched list`)",
      },
    );
  }
  const chain = await resolveChain(link, (n) => loadBeside(folder, n));
  const { manifest } = await readManifest(link.path);
  return { folder, chain, manifest };
}

/** The chain of a set's backup NAME, or of its newest backup. */
export async function locateForSet(set: SetConfig, name?: string): Promise<LocatedChain> {
  const { backups, incomplete } = await listFolder(set.folder, set.letter, set.id);
  const pick = name === undefined ? backups.at(-1) : backups.find((b) => b.name === name);
  const unusable = name === undefined ? undefined : incomplete.find((i) => i.name === name);
  if (!pick && unusable && unusable.code !== "ENOENT") {
    throw new BschedError("MANIFEST_INVALID", `${unusable.path} cannot be used: ${unusable.reason}`, {
      hint: "this backup cannot be trusted; run `bsched verify` and restore from another backup",
    });
  }
  if (!pick) {
    throw new BschedError(
      "BACKUP_NOT_FOUND",
      name === undefined
        ? `set "${set.id}" has no complete backup in ${set.folder}`
        : `set "${set.id}" has no backup ${name} in ${set.folder}`,
      {
        hint:
          name === undefined ? `make one with \`bsched backup ${set.id}\`` : `see \`bsched list ${set.id}\``,
      },
    );
  }
  try {
    return await chainAt(set.folder, pick.name);
  } catch (e) {
    // The newest cannot be restored: never fall back silently (older data), but name the
    // newest one that can, so the person chooses knowingly.
    if (name !== undefined || !(e instanceof BschedError)) throw e;
    const ok = (await assessFolder(set.folder, set.letter, set.id)).filter((b) => b.state === "ok").at(-1);
    if (!ok) throw e;
    throw new BschedError(e.code, e.message, {
      hint: `the newest restorable backup of set "${set.id}" is ${ok.name}: add \`--backup ${ok.name}\` (\`bsched list ${set.id}\` shows every backup's state)`,
      cause: e,
    });
  }
}

/** The chain of the backup folder at `p`, its parents found beside it; no config needed. */
export async function locateFromPath(p: string): Promise<LocatedChain> {
  const abs = path.resolve(p.replace(/\/+$/, ""));
  const st = await fs.stat(abs).catch(() => undefined);
  if (!st)
    throw new BschedError("BACKUP_NOT_FOUND", `${abs} does not exist`, {
      hint: "give the path of a backup folder",
    });
  // The path given may be a link (to a backup folder or file): the user's choice. What lies
  // inside a backup folder is never followed.
  if (st.isDirectory()) return chainAt(path.dirname(abs), path.basename(abs));
  // A self-extracting file: in its own folder, or alone (then read at its real path). Its header
  // is read as a regular file only: a FIFO given here is refused, never waited on.
  const real = await fs.realpath(abs);
  const { name } = await readSelfExtractingHeader(real);
  const dir = path.dirname(abs);
  if (path.basename(dir) === name && (await loadLink(path.dirname(dir), name)))
    return chainAt(path.dirname(dir), name);
  const link = await loneFileLink(real);
  const chain = await resolveChain(link, (n) => loadBeside(dir, n));
  return { folder: dir, chain, manifest: link.manifest };
}
