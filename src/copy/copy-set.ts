import { setTimeout as sleepFor } from "node:timers/promises";
import type { Catalog } from "../catalog/catalog.ts";
import { recordOf } from "../catalog/reconcile.ts";
import { DEFAULT_TRANSFERS, type VerifyCopy } from "../config/destinations.ts";
import type { SetConfig } from "../config/load.ts";
import { cancelledOr, throwIfCancelled } from "../core/cancel.ts";
import { BschedError } from "../core/errors.ts";
import type { Progress, ProgressCallback } from "../core/types.ts";
import type { Destination } from "../destination/destination.ts";
import type { Clock } from "../platform/clock.ts";
import { fromOsError } from "../platform/os-errors.ts";
import type { KeepPolicy } from "../retention/policy.ts";
import type { PruneResult } from "../retention/prune.ts";
import { MANIFEST_FILE, parseHeaderLine } from "../snapshot/manifest.ts";
import { copyBackup, type SentFile } from "./copy-backup.ts";
import { type CopyPlan, planCopies } from "./plan.ts";

/**
 * One copy pass of a set: every published, restorable backup of the primary that a destination
 * lacks is sent there, checked, and recorded; then that destination's retention runs
 * (docs/design.md "Copies"). Each destination is independent: one failing (after its retries)
 * never stops the others, and nothing here ever writes to the primary.
 */

/** A destination to copy to, with what its config says of it. */
export interface CopyTarget {
  dest: Destination;
  /** Its own keep policy (`destinations.NAME.keep`); default the set's. */
  keep?: KeepPolicy | undefined;
  /** How each copy is checked (config/destinations.ts VERIFY_COPY). */
  verify: VerifyCopy;
  /** Its own number of attempts (`destinations.NAME.attempts`); default the run's retry. */
  attempts?: number | undefined;
  /** Files sent at once (`destinations.NAME.transfers`); default DEFAULT_TRANSFERS. */
  transfers?: number | undefined;
}

/** How a failing destination is tried again: `attempts` in all, waiting `delaysMs[i]` before attempt i+2. */
export interface CopyRetry {
  attempts: number;
  delaysMs: number[];
}

/** 3 attempts, 5 s then 30 s apart: a dropped connection or a rebooting NAS gets another chance. */
export const DEFAULT_RETRY: CopyRetry = { attempts: 3, delaysMs: [5_000, 30_000] };

export interface CopySetOptions {
  set: SetConfig;
  /** Where the backups are read: the set's own folder. */
  from: Destination;
  targets: CopyTarget[];
  clock: Clock;
  timezone: string;
  /** Each copied backup is recorded (destination = its name), each one its retention removes forgotten. */
  catalog?: Catalog | undefined;
  /** Progress of each destination: phase "copy", `destination` set, files/bytes of what it is sent. */
  onProgress?: ProgressCallback | undefined;
  /** A destination's attempt failed and will be tried again after `delayMs`. */
  onRetry?: ((destination: string, attempt: number, error: BschedError, delayMs: number) => void) | undefined;
  signal?: AbortSignal | undefined;
  retry?: CopyRetry | undefined;
  /** The catalog could not record something: told here, never a reason to fail a copy. */
  onCatalogError?: ((what: string, e: unknown) => void) | undefined;
  /** How the backoff waits (tests: a fake one); default a timer, cut short by `signal`. */
  sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /** Apply each destination's keep policy after its copies (default true). */
  prune?: boolean | undefined;
}

/** How one destination's pass ended. */
export interface CopyOutcome {
  destination: string;
  /** Where it is (a path, a URL without credentials). */
  where: string;
  ok: boolean;
  /** Backups sent (and checked) in this pass, oldest first, over every attempt. */
  copied: string[];
  /** The newest backup it holds, as far as this pass saw (null: none, or unreachable). */
  newest: string | null;
  attempts: number;
  /** Restorable on the primary but not sent, with why. */
  skipped: { name: string; reason: string }[];
  /** Its retention after the copies (undefined: no keep policy, prune off, or the pass failed first). */
  pruned?: PruneResult | undefined;
  error?: string | undefined;
  code?: string | undefined;
  hint?: string | undefined;
}

/**
 * Failures another attempt a few seconds later cannot mend: the same credentials or config fail
 * the same way, and a disk that is not mounted (or a folder bsched may not write) stays so until
 * a person acts. The next run tries again.
 */
const FINAL = new Set([
  "AUTH_FAILED",
  "HOST_KEY_MISMATCH",
  "SECRET_MISSING",
  "CONFIG_INVALID",
  "USAGE",
  "DESTINATION_MISSING",
  "PERMISSION_DENIED",
]);

export async function copySet(opts: CopySetOptions): Promise<CopyOutcome[]> {
  throwIfCancelled(opts.signal, `copy of set ${opts.set.id}`);
  // Side by side: a destination waiting out its backoff (or a slow link) delays no other. Each
  // streams a few files at a time (its `transfers`), so memory stays bounded whatever the sizes.
  const outcomes = await Promise.all(opts.targets.map((t) => copyToOne(opts, t)));
  // A cancel stops every destination: the run fails CANCELLED (each staging area aborted).
  throwIfCancelled(opts.signal, `copy of set ${opts.set.id}`);
  return outcomes;
}

async function copyToOne(opts: CopySetOptions, target: CopyTarget): Promise<CopyOutcome> {
  const { dest } = target;
  const base = opts.retry ?? DEFAULT_RETRY;
  const retry = target.attempts === undefined ? base : { ...base, attempts: target.attempts };
  const sleep = opts.sleep ?? ((ms: number, signal?: AbortSignal) => sleepFor(ms, undefined, { signal }));
  const outcome: CopyOutcome = {
    destination: dest.name,
    where: dest.where,
    ok: false,
    copied: [],
    newest: null,
    attempts: 0,
    skipped: [],
  };
  let last: BschedError | undefined;
  for (let attempt = 1; attempt <= Math.max(1, retry.attempts); attempt++) {
    outcome.attempts = attempt;
    try {
      await pass(opts, target, outcome);
      const first = outcome.skipped[0];
      if (first !== undefined) {
        // Not something another attempt mends: the destination stays behind until a person acts.
        return {
          ...outcome,
          ok: false,
          error: `${outcome.skipped.length} backup(s) not sent to ${dest.name}: ${first.name}: ${first.reason}`,
          code: "COPY_FAILED",
          hint: `give destination ${dest.name} a folder (or prefix) of its own: another set or server writes there under these names`,
        };
      }
      outcome.ok = true;
      delete outcome.error;
      delete outcome.code;
      delete outcome.hint;
      return outcome;
    } catch (e) {
      if (opts.signal?.aborted) return { ...outcome, ...failure(cancelledOr(opts.signal, e, "copy"), dest) };
      last = worded(e, dest, opts.set.id);
      if (FINAL.has(last.code) || attempt >= retry.attempts) break;
      const delay = retry.delaysMs[Math.min(attempt - 1, retry.delaysMs.length - 1)] ?? 0;
      opts.onRetry?.(dest.name, attempt, last, delay);
      try {
        await sleep(delay, opts.signal);
      } catch {
        // Cancelled while waiting: reported by copySet.
        break;
      }
    }
  }
  return { ...outcome, ...failure(last, dest) };
}

/** A failed pass's words: the destination named in the message, the fix in the hint. */
function worded(e: unknown, dest: Destination, set: string): BschedError {
  const err = fromOsError(e, { path: dest.where, doing: `copy of set ${set} to ${dest.name}` });
  if (err instanceof BschedError) return err;
  return new BschedError(
    "COPY_FAILED",
    `copy of set ${set} to ${dest.name}: ${(err as Error)?.message ?? err}`,
    {
      hint: `check ${dest.where}; the next backup, or \`bsched copy ${set} --to ${dest.name}\`, sends what it lacks`,
      cause: e,
    },
  );
}

function failure(e: unknown, dest: Destination): Pick<CopyOutcome, "ok" | "error" | "code" | "hint"> {
  const err = e instanceof BschedError ? e : undefined;
  const message = (e as Error)?.message ?? String(e);
  return {
    ok: false,
    // A destination's own errors name it already (a path, a URL); an OS error's path may be a staging file.
    error: message.includes(dest.where) || message.includes(dest.name) ? message : `${dest.name}: ${message}`,
    code: err?.code ?? "COPY_FAILED",
    ...(err?.hint === undefined ? {} : { hint: err.hint }),
  };
}

/** One attempt: ready, lock, clean up, plan, send and check each, then the retention. */
async function pass(opts: CopySetOptions, target: CopyTarget, outcome: CopyOutcome): Promise<void> {
  const { set, from, clock, catalog, signal } = opts;
  const { dest } = target;
  const doing = `copy of set ${set.id} to ${dest.name}`;
  await dest.ready();
  const lease = await dest.lock(set.id, doing, clock);
  let plan: CopyPlan;
  try {
    // What a crashed or cancelled copy left there (its staging areas): the lock holder's to remove.
    await dest.removeLeftovers(set.letter);
    plan = await planCopies(from, dest, set);
    outcome.skipped = plan.skipped;
    outcome.newest = [...plan.present].pop() ?? outcome.newest;
    const progress: Progress = {
      phase: "copy",
      destination: dest.name,
      files: 0,
      bytes: 0,
      totalFiles: plan.totalFiles,
      totalBytes: plan.totalBytes,
    };
    let shown = 0;
    const report = () => opts.onProgress?.({ ...progress });
    if (plan.send.length > 0) report();
    for (const name of plan.send) {
      throwIfCancelled(signal, doing);
      if (plan.replace.includes(name)) {
        // Its manifest there is cut short or unreadable: useless, and in the way of a whole copy.
        await dest.remove(name);
        await record(opts, "forget a replaced copy", async (c) => c.removeBackup(set.id, name, dest.name));
      }
      const r = await copyBackup(from, dest, name, {
        signal,
        transfers: target.transfers ?? DEFAULT_TRANSFERS,
        onFile: (file) => {
          progress.current = `${name}/${file}`;
          progress.files++;
          report();
        },
        onBytes: (n) => {
          progress.bytes += n;
          if (progress.bytes - shown >= 4 << 20) {
            shown = progress.bytes;
            report();
          }
        },
      });
      try {
        await check(target, set.id, name, r, signal);
      } catch (e) {
        // A copy that does not match its manifest is never left to look like a backup.
        await dest.remove(name).catch(() => undefined);
        throw e;
      }
      outcome.copied.push(name);
      outcome.newest = name;
      await record(opts, `record ${name} on ${dest.name}`, async (c) => {
        // The header of the manifest just published there and checked: not read back again.
        const nl = r.manifestText.indexOf("\n");
        const first = nl < 0 ? r.manifestText : r.manifestText.slice(0, nl);
        const header = parseHeaderLine(first, dest.locationOf(name, MANIFEST_FILE));
        c.putBackup(await recordOf(set.id, { name, path: dest.locationOf(name), dest, header }));
      });
    }
    if (plan.send.length > 0) opts.onProgress?.({ ...progress, phase: "done" });
  } finally {
    await lease.release();
  }
  const keep = target.keep ?? set.keep;
  if (keep && opts.prune !== false) {
    // Its own lock again (pruneSet takes it): only this destination's backups, only its chains.
    // Loaded here: a pass with no keep policy (and `bsched copy` before it starts) does without it.
    const { pruneSet } = await import("../retention/prune.ts");
    outcome.pruned = await pruneSet(
      { ...set, keep },
      { timezone: opts.timezone, clock, catalog, destination: dest },
    );
  }
  // What it holds now: what the plan saw there, plus what was sent, minus what its retention
  // removed; the newest of it, by age, without listing the destination again.
  const removed = new Set(outcome.pruned?.removed ?? []);
  const age = (n: string) => plan.startedAt.get(n) ?? "";
  const held = [...new Set([...plan.there, ...outcome.copied])].filter((n) => !removed.has(n));
  held.sort((a, b) => (age(a) < age(b) ? -1 : age(a) > age(b) ? 1 : a < b ? -1 : a > b ? 1 : 0));
  outcome.newest = held.at(-1) ?? null;
}

/** A catalog step, best effort (the destination is the truth: `catalog check` repairs from it). */
async function record(opts: CopySetOptions, what: string, fn: (c: Catalog) => Promise<void>): Promise<void> {
  if (!opts.catalog) return;
  try {
    await fn(opts.catalog);
  } catch (e) {
    opts.onCatalogError?.(what, e);
  }
}

/** The check of one copy; throws COPY_FAILED naming what differs. */
async function check(
  target: CopyTarget,
  set: string,
  name: string,
  r: { stored: SentFile[]; manifestText: string; checkedOnPut: boolean },
  signal: AbortSignal | undefined,
): Promise<void> {
  const { dest } = target;
  const problems: string[] = [];
  /** Files the server's own sha256 matched: the same bytes, so the same size (no need to ask it). */
  const vouched = new Set<string>();
  let mode = target.verify;
  if (mode === "checksum") {
    // What was sent matched the manifest (copyBackup): the server now vouches for what it stored,
    // by checking each put, or by hashing each file itself; without either it is read back.
    if (r.checkedOnPut) mode = "size";
    else if (dest.storedDigest) {
      for (const f of r.stored) {
        const digest = await dest.storedDigest(name, f.file, signal);
        if (digest === undefined) {
          mode = "read";
          break;
        }
        if (digest !== f.sent) problems.push(`${f.file}: the server's sha256 is not the one sent`);
        else vouched.add(f.file);
      }
      if (mode === "read") vouched.clear();
      if (mode === "checksum") mode = "size";
    } else mode = "read";
  }
  if (mode === "read") {
    // Re-read from the destination and hashed: every file, and the chain there.
    // Loaded here: a `size` or server-checked copy never reads a backup back.
    const { verifyBackups } = await import("../verify/verify.ts");
    const v = await verifyBackups(dest, [name], undefined, { set, signal });
    for (const p of v.problems) problems.push(p.path === undefined ? p.problem : `${p.path}: ${p.problem}`);
  } else {
    // One listing of the whole tree where the destination has one (storedSizes), else the top's
    // and each stored file opened. A file the listing leaves out or shows otherwise is opened:
    // the listing is a shortcut, never the only word on a missing or short file.
    const sizes = dest.storedSizes
      ? await dest.storedSizes(name)
      : new Map((await dest.topFiles(name)).map((f) => [f.name, f.size]));
    const want = [...r.stored, { file: MANIFEST_FILE, size: Buffer.byteLength(r.manifestText) }];
    for (const f of want) {
      if (vouched.has(f.file)) continue;
      let size = sizes.get(f.file);
      if (size !== f.size && (dest.storedSizes !== undefined || f.file.includes("/"))) {
        const h = await dest.open(name, f.file).catch(() => undefined);
        size = h?.size;
        await h?.close();
      }
      if (size !== f.size)
        problems.push(`${f.file}: ${size ?? "missing"} bytes, the manifest says ${f.size}`);
    }
  }
  if (problems.length > 0) {
    throw new BschedError(
      "COPY_FAILED",
      `the copy of ${name} on ${dest.name} (${dest.locationOf(name)}) does not match its manifest: ${problems.slice(0, 3).join("; ")}${problems.length > 3 ? `; and ${problems.length - 3} more` : ""}; that copy was removed`,
      {
        hint: `check the storage of ${dest.where} (a failing disk, a full share); \`bsched copy ${set} --to ${dest.name}\` sends it again`,
      },
    );
  }
}
