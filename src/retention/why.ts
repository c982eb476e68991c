import { zonedParts } from "../snapshot/naming.ts";
import { isoWeek, type KeepPolicy, type RetentionItem, type RetentionPlan } from "./policy.ts";

/**
 * Why the keep policy deletes each backup of `plan.remove` (the other half of `plan.reasons`, which
 * says why each kept one is kept): for each rule of the policy, the backup it keeps instead, or that
 * its day, week or month is older than those kept. Computed the way planRetention decides (newest
 * first, restorable backups only, in the set's time zone), for showing: it decides nothing.
 */
export function removalReasons(
  items: RetentionItem[],
  policy: KeepPolicy,
  timeZone: string,
  plan: RetentionPlan,
): Record<string, string> {
  const newestFirst = items
    .filter((b) => b.broken === undefined)
    .sort((a, b) =>
      a.startedAt > b.startedAt ? -1 : a.startedAt < b.startedAt ? 1 : a.name > b.name ? -1 : 1,
    );
  const rank = new Map(newestFirst.map((b, i) => [b.name, i]));
  const kinds: [keyof KeepPolicy, string, (p: ReturnType<typeof zonedParts>) => string][] = [
    ["daily", "day", (p) => `${p.year}-${p.month}-${p.day}`],
    ["weekly", "week", (p) => isoWeek(Number(p.year), Number(p.month), Number(p.day))],
    ["monthly", "month", (p) => `${p.year}-${p.month}`],
  ];
  // For each rule: the key of each backup, and which backup stands for each key kept.
  const rules = kinds
    .filter(([kind]) => (policy[kind] ?? 0) > 0)
    .map(([kind, unit, keyOf]) => {
      const n = policy[kind] ?? 0;
      const keyOfItem = new Map<string, string>();
      const kept = new Map<string, string>();
      for (const b of newestFirst) {
        const key = keyOf(zonedParts(new Date(b.startedAt), timeZone));
        keyOfItem.set(b.name, key);
        if (!kept.has(key) && kept.size < n) kept.set(key, b.name);
      }
      return { kind, unit, n, keyOfItem, kept };
    });
  const out: Record<string, string> = {};
  for (const name of plan.remove) {
    const why: string[] = [];
    const last = policy.last ?? 0;
    if (last > 0) why.push(`not among the last ${last} (it is number ${(rank.get(name) ?? 0) + 1})`);
    for (const r of rules) {
      const key = r.keyOfItem.get(name) as string;
      const instead = r.kept.get(key);
      why.push(
        instead === undefined
          ? `its ${r.unit} ${key} is older than the ${r.n} ${r.kind === "daily" ? "days" : `${r.unit}s`} kept`
          : `${r.kind}: ${instead} is the newest of ${key}`,
      );
    }
    out[name] = why.join("; ");
  }
  return out;
}
