import fs from "node:fs/promises";
import path from "node:path";
import type { SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import type { Manifest } from "../core/types.ts";
import { listFolder, loadLink, readManifest } from "../destination/local/folder.ts";
import { type ChainLink, resolveChain } from "../snapshot/chain.ts";

export interface LocatedChain {
  folder: string;
  chain: ChainLink[];
  manifest: Manifest;
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
  const chain = await resolveChain(link, (n) => loadLink(folder, n));
  const { manifest } = await readManifest(link.path);
  return { folder, chain, manifest };
}

/** The chain of a set's backup NAME, or of its newest backup. */
export async function locateForSet(set: SetConfig, name?: string): Promise<LocatedChain> {
  const { backups } = await listFolder(set.folder, set.letter, set.id);
  const pick = name === undefined ? backups.at(-1) : backups.find((b) => b.name === name);
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
  return chainAt(set.folder, pick.name);
}

/** The chain of the backup folder at `p`, its parents found beside it; no config needed. */
export async function locateFromPath(p: string): Promise<LocatedChain> {
  const abs = path.resolve(p.replace(/\/+$/, ""));
  const st = await fs.stat(abs).catch(() => undefined);
  if (!st)
    throw new BschedError("BACKUP_NOT_FOUND", `${abs} does not exist`, {
      hint: "give the path of a backup folder",
    });
  if (!st.isDirectory()) {
    throw new BschedError("BACKUP_NOT_FOUND", `${abs} is not a backup folder`, {
      hint: "give the folder named like D_2026_01_31_04_00_00",
    });
  }
  return chainAt(path.dirname(abs), path.basename(abs));
}
