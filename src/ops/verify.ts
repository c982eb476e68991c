import path from "node:path";
import type { SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import { listBackups } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";
import { destinationOf } from "../destination/for-set.ts";
import { backupAtPath } from "../destination/local/at-path.ts";
import { LocalDestination } from "../destination/local/local.ts";
import type { LoneFileDestination } from "../destination/local/lone-file.ts";
import { type Clock, systemClock } from "../platform/clock.ts";
import { locateForSet, locateFromPath } from "../restore/locate.ts";
import { type VerifyProblem, type VerifyResult, verifyBackups } from "../verify/verify.ts";
import { type OpContext, progressTo, throwIfAborted } from "./context.ts";

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
  ctx: Pick<OpContext, "progress" | "signal"> & { clock?: Clock | undefined },
  target: VerifyTarget,
  opts: { destination?: Destination | undefined } = {},
): Promise<VerifyResult> {
  throwIfAborted(ctx.signal, "verify");
  let folder: Destination;
  let names: string[];
  let set: string | undefined;
  let unreadable: VerifyProblem | undefined;
  if ("from" in target) {
    try {
      const located = await locateFromPath(target.from);
      folder = located.dest;
      names = located.chain.map((l) => l.name);
    } catch (e) {
      // A broken chain is damage to report, not a reason to stop: verify what is there.
      if (!(e instanceof BschedError) || e.code === "BACKUP_NOT_FOUND") throw e;
      const abs = path.resolve(target.from.replace(/\/+$/, ""));
      folder = new LocalDestination(path.dirname(abs));
      names = [path.basename(abs)];
      // A self-extracting file that cannot be read: say what is damaged in it, not that a
      // manifest is missing (a lone file has none beside it to find).
      // A FIFO, socket or device given as the file: named as such (it is never opened).
      const at = e.code === "UNSAFE_PATH" ? undefined : await backupAtPath(abs);
      if (e.code === "UNSAFE_PATH") unreadable = { backup: path.basename(abs), problem: e.message };
      else if (at?.kind === "file" && at.regular) unreadable = await loneFileProblem(abs, at.lone, e);
    }
  } else {
    const cfg = target.set;
    folder = opts.destination ?? destinationOf(cfg);
    set = cfg.id;
    if (target.backup) names = (await locateForSet(cfg, target.backup, folder)).chain.map((l) => l.name);
    else {
      const listing = await listBackups(folder, cfg.letter, cfg.id);
      names = [...listing.backups.map((b) => b.name), ...listing.incomplete.map((i) => i.name)];
    }
  }
  if (unreadable) return { backups: 1, files: 0, bytes: 0, problems: [unreadable] };
  return verifyBackups(folder, names, progressTo(ctx.progress, ctx.clock ?? systemClock), {
    set,
    signal: ctx.signal,
  });
}

/** The damage of a self-extracting file whose manifest could not be read (`error`: why not). */
async function loneFileProblem(
  file: string,
  lone: LoneFileDestination,
  error: BschedError,
): Promise<VerifyProblem> {
  // Loaded only here: tar's code is not needed to verify backup folders.
  const { payloadDamage } = await import("../format/compressed/reader.ts");
  const damage = await payloadDamage({ label: file, open: () => lone.openFile() });
  return {
    backup: path.basename(file),
    problem: damage ?? error.message.replace(`${file}: `, ""),
  };
}
