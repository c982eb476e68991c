import fs from "node:fs/promises";
import path from "node:path";
import type { SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import { listFolder } from "../destination/local/folder.ts";
import { locateForSet, locateFromPath } from "../restore/locate.ts";
import { type VerifyProblem, type VerifyResult, verifyBackups } from "../verify/verify.ts";
import { type OpContext, throwIfAborted } from "./context.ts";

/**
 * What to verify: every backup of a set (complete and incomplete), the chain of one backup of a
 * set, or — with no config — the chain of a backup folder or self-extracting file at a path.
 */
export type VerifyTarget = { set: SetConfig; backup?: string | undefined } | { from: string };

/**
 * `bsched verify`: choose the backups (as above), re-read and re-hash them. Damage is the result
 * (`problems`), not an error; an error is thrown only when there is nothing to verify (no such
 * backup). Needs no config or catalog: `--from` works on a copied folder alone.
 */
export async function verify(
  ctx: Pick<OpContext, "progress" | "signal">,
  target: VerifyTarget,
): Promise<VerifyResult> {
  throwIfAborted(ctx.signal);
  let folder: string;
  let names: string[];
  let set: string | undefined;
  let unreadable: VerifyProblem | undefined;
  if ("from" in target) {
    try {
      const located = await locateFromPath(target.from);
      folder = located.folder;
      names = located.chain.map((l) => l.name);
    } catch (e) {
      // A broken chain is damage to report, not a reason to stop: verify what is there.
      if (!(e instanceof BschedError) || e.code === "BACKUP_NOT_FOUND") throw e;
      const abs = path.resolve(target.from.replace(/\/+$/, ""));
      folder = path.dirname(abs);
      names = [path.basename(abs)];
      // A self-extracting file that cannot be read: say what is damaged in it, not that a
      // manifest is missing (a lone file has none beside it to find).
      // A FIFO, socket or device given as the file: named as such (it is never opened).
      if (e.code === "UNSAFE_PATH") unreadable = { backup: path.basename(abs), problem: e.message };
      else if ((await fs.stat(abs)).isFile()) unreadable = await loneFileProblem(abs, e);
    }
  } else {
    const cfg = target.set;
    folder = cfg.folder;
    set = cfg.id;
    if (target.backup) names = (await locateForSet(cfg, target.backup)).chain.map((l) => l.name);
    else {
      const listing = await listFolder(cfg.folder, cfg.letter, cfg.id);
      names = [...listing.backups.map((b) => b.name), ...listing.incomplete.map((i) => i.name)];
    }
  }
  if (unreadable) return { backups: 1, files: 0, bytes: 0, problems: [unreadable] };
  const emit = ctx.progress;
  return verifyBackups(folder, names, emit ? (p) => emit({ kind: "progress", progress: p }) : undefined, {
    set,
  });
}

/** The damage of a self-extracting file whose manifest could not be read (`error`: why not). */
async function loneFileProblem(file: string, error: BschedError): Promise<VerifyProblem> {
  // Loaded only here: tar's code is not needed to verify backup folders.
  const { payloadDamage } = await import("../format/compressed/reader.ts");
  const damage = await payloadDamage(file);
  return {
    backup: path.basename(file),
    problem: damage ?? error.message.replace(`${file}: `, ""),
  };
}
