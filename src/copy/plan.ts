import { assessBackups } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";

/**
 * What a copy pass sends to one destination (docs/design.md "Copies"): the set's restorable
 * backups on the primary that the destination lacks, oldest first, each incremental only after
 * its parent is there (already, or sent earlier in the same pass): a chain never arrives with a
 * hole, so a destination that was down catches up from where it stopped, without a new full.
 */
export interface CopyPlan {
  /** To send, oldest first: each one's parent is on the destination or earlier in this list. */
  send: string[];
  /**
   * Listed on the destination but not usable there (its manifest missing, cut short or
   * unreadable: a copy damaged after it was made): removed, then sent again from the primary.
   * Every name here is also in `send`.
   */
  replace: string[];
  /** Restorable on the primary, already whole on the destination. */
  present: string[];
  /** Restorable on the primary but not sent, with why (a backup of another set under its name there). */
  skipped: { name: string; reason: string }[];
  /** Files and bytes the sent backups store, from their manifests' totals (a compressed one's: before compression). */
  totalFiles: number;
  totalBytes: number;
  /** The set's backups whole on the destination as planned (its own retention may have kept more than the primary's). */
  there: string[];
  /** When each backup seen on either side began (its header): the newest after the pass, without listing again. */
  startedAt: Map<string, string>;
}

/**
 * Plan one destination's pass. Cheap: header lines and manifest ends on both sides (never the
 * entries nor the files); whether the stored files of a copy are intact is what the check after
 * each copy, and `verify --dest`, read. A backup the primary's retention removed is simply not
 * sent; a broken one on the primary (a damaged manifest, a hole in its chain) is never sent.
 */
export async function planCopies(
  from: Destination,
  to: Destination,
  set: { id: string; letter: string },
): Promise<CopyPlan> {
  const primary = (await assessBackups(from, set.letter, set.id)).filter((b) => b.state === "ok" && b.header);
  // Whole on the destination: a readable header whose manifest ends as written (its own
  // damage, not its chain's: the chain there is checked below, as this pass will leave it).
  const whole = new Set<string>();
  const damaged = new Set<string>();
  const foreign = new Map<string, string>();
  const startedAt = new Map<string, string>();
  for (const b of await assessBackups(to, set.letter, set.id)) {
    if (b.foreignSet !== undefined) foreign.set(b.name, b.foreignSet);
    else if (b.header === undefined || (b.state === "broken" && /^manifest /.test(b.reason)))
      damaged.add(b.name);
    else {
      whole.add(b.name);
      startedAt.set(b.name, b.header.startedAt);
    }
  }
  for (const b of primary) if (b.header) startedAt.set(b.name, b.header.startedAt);

  const plan: CopyPlan = {
    send: [],
    replace: [],
    present: [],
    skipped: [],
    totalFiles: 0,
    totalBytes: 0,
    there: [...whole],
    startedAt,
  };
  // What the destination will hold whole after this pass, chain included.
  const good = new Set<string>();
  for (const b of primary) {
    const parent = b.header?.parent?.name;
    const other = foreign.get(b.name);
    if (other !== undefined) {
      plan.skipped.push({
        name: b.name,
        reason: `${to.locationOf(b.name)} holds a backup of set ${other} under that name`,
      });
      continue;
    }
    if (parent !== undefined && !good.has(parent)) {
      // Only when the destination holds a copy whose parent it lacks and the primary no longer
      // has: that copy's chain there is the destination's retention's to judge, not the plan's.
      plan.skipped.push({ name: b.name, reason: `its parent ${parent} is not on ${to.name}` });
      continue;
    }
    good.add(b.name);
    if (whole.has(b.name)) plan.present.push(b.name);
    else {
      if (damaged.has(b.name)) plan.replace.push(b.name);
      plan.send.push(b.name);
      plan.totalFiles += b.header?.totals.storedFiles ?? 0;
      plan.totalBytes += b.header?.totals.storedBytes ?? 0;
    }
  }
  return plan;
}
