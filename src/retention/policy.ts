import { BschedError } from "../core/errors.ts";
import { zonedParts } from "../snapshot/naming.ts";

export interface KeepPolicy {
  last?: number | undefined;
  daily?: number | undefined;
  weekly?: number | undefined;
  monthly?: number | undefined;
}

export interface RetentionItem {
  name: string;
  /** ISO instant the backup started. */
  startedAt: string;
  parent: string | null;
  /** Why it cannot be restored (its manifest or a link of its chain); absent when it can. */
  broken?: string | undefined;
}

export interface RetentionPlan {
  /** Oldest first. */
  keep: string[];
  /** In a safe deletion order: newest first, so a child always goes before its parent. */
  remove: string[];
  /** Why each kept backup is kept. */
  reasons: Record<string, string[]>;
  /**
   * Backups that cannot be restored, newest first, with why: never deleted by the policy and
   * never counted toward it (removing them is `prune --broken`).
   */
  broken: { name: string; reason: string }[];
}

export function keepsSomething(p: KeepPolicy): boolean {
  return [p.last, p.daily, p.weekly, p.monthly].some((n) => (n ?? 0) > 0);
}

/** ISO 8601 week of a calendar date: "YYYY-Www" (weeks start on Monday; week 1 holds a Thursday). */
export function isoWeek(y: number, m: number, d: number): string {
  const date = new Date(Date.UTC(y, m - 1, d));
  const dow = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - dow);
  const yearStart = Date.UTC(date.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((date.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${date.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

const newestFirstOrder = (a: RetentionItem, b: RetentionItem): number =>
  a.startedAt > b.startedAt ? -1 : a.startedAt < b.startedAt ? 1 : a.name > b.name ? -1 : 1;

/**
 * Which backups a `keep` policy keeps, in the set's time zone (a "day" is a local day):
 * the newest `last`, the newest of each of the newest `daily` days that have a backup, likewise
 * for ISO weeks and months. Then whole chains: every ancestor of a kept incremental is kept, so
 * pruning never leaves a backup that cannot be restored.
 *
 * Only restorable backups count: a broken one (damaged manifest, missing or altered parent)
 * neither fills a `last` slot nor stands for its day, so the newest restorable state of every
 * point kept stays; and it is never deleted here, whatever it claims to depend on.
 */
export function planRetention(items: RetentionItem[], policy: KeepPolicy, timeZone: string): RetentionPlan {
  if (!keepsSomething(policy)) {
    throw new BschedError("CONFIG_INVALID", "the keep policy keeps nothing (every count is 0 or missing)", {
      hint: "set at least one of keep.last, keep.daily, keep.weekly, keep.monthly above 0, or remove `keep`",
    });
  }
  const broken = items
    .filter((b) => b.broken !== undefined)
    .sort(newestFirstOrder)
    .map((b) => ({ name: b.name, reason: b.broken as string }));
  const newestFirst = items.filter((b) => b.broken === undefined).sort(newestFirstOrder);
  const byName = new Map(newestFirst.map((b) => [b.name, b]));
  const reasons = new Map<string, string[]>();
  const keep = (name: string, why: string) => {
    const r = reasons.get(name);
    if (r) r.push(why);
    else reasons.set(name, [why]);
  };
  newestFirst.slice(0, policy.last ?? 0).forEach((b, i) => {
    keep(b.name, `last ${i + 1}`);
  });
  const buckets: [keyof KeepPolicy, (p: ReturnType<typeof zonedParts>) => string][] = [
    ["daily", (p) => `${p.year}-${p.month}-${p.day}`],
    ["weekly", (p) => isoWeek(Number(p.year), Number(p.month), Number(p.day))],
    ["monthly", (p) => `${p.year}-${p.month}`],
  ];
  for (const [kind, keyOf] of buckets) {
    const n = policy[kind] ?? 0;
    const seen = new Set<string>();
    for (const b of newestFirst) {
      if (seen.size >= n) break;
      const key = keyOf(zonedParts(new Date(b.startedAt), timeZone));
      if (seen.has(key)) continue;
      seen.add(key);
      keep(b.name, `${kind} ${key}`);
    }
  }
  for (const name of [...reasons.keys()]) {
    let child = name;
    for (let p = byName.get(name)?.parent; p && byName.has(p); p = byName.get(p)?.parent) {
      if (reasons.has(p) && reasons.get(p)?.some((r) => r.startsWith("needed by"))) break;
      keep(p, `needed by ${child}`);
      child = p;
    }
  }
  return {
    keep: newestFirst
      .filter((b) => reasons.has(b.name))
      .map((b) => b.name)
      .reverse(),
    remove: newestFirst.filter((b) => !reasons.has(b.name)).map((b) => b.name),
    reasons: Object.fromEntries(reasons),
    broken,
  };
}
