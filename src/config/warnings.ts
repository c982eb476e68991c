import type { SetConfig } from "./load.ts";

/** An incremental set's full cadence when `fullEvery` is not given (docs/design.md "The full cadence"). */
export const DEFAULT_FULL_EVERY = 7;

const DAY = 86_400;

/** Seconds between two scheduled runs of the set (the longest, for months); undefined when on demand only. */
function runInterval(set: SetConfig): number | undefined {
  if (!set.automatic) return undefined;
  switch (set.frequency) {
    case "hourly":
      return 3600;
    case "daily":
      return DAY;
    case "weekly":
      return 7 * DAY;
    case "monthly":
      return 31 * DAY;
    case "every":
      return set.every;
    case "now":
      return undefined;
  }
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 2 * 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 2 * DAY) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / DAY)} days`;
}

/**
 * What the keep policy covers, in seconds back from the newest backup: the newest `last` runs,
 * and `daily`/`weekly`/`monthly` periods (each at least one run apart). Undefined when the set
 * has no schedule and keeps by period: the span then depends on when people run it.
 */
function keepSpan(keep: NonNullable<SetConfig["keep"]>, interval: number | undefined): number | undefined {
  const periods: [number | undefined, number][] = [
    [keep.daily, DAY],
    [keep.weekly, 7 * DAY],
    [keep.monthly, 31 * DAY],
  ];
  if (interval === undefined) {
    return periods.some(([n]) => (n ?? 0) > 0) ? undefined : (keep.last ?? 0);
  }
  let span = (keep.last ?? 0) * interval;
  for (const [n, period] of periods) span = Math.max(span, (n ?? 0) * Math.max(period, interval));
  return span;
}

/**
 * Advice on one set's config that must not stop the load. The keep check: retention keeps whole
 * chains (a kept incremental needs every backup back to its full), so it can delete a chain only
 * once all of it is older than what `keep` asks for. With one endless chain that never happens;
 * with a full every N backups it does, but when one chain spans more than `keep` covers, the
 * chains and not `keep` decide how much stays (`keep: {last: 2}` with `fullEvery: 30` holds up
 * to 31 backups and deletes nothing before the 32nd).
 */
export function setWarnings(id: string, set: SetConfig, fullEveryGiven: boolean): string[] {
  const out: string[] = [];
  if (set.mode === "full") {
    if (fullEveryGiven)
      out.push(`sets.${id}.fullEvery: unused with mode full (every backup of this set is a full already)`);
    return out;
  }
  if (!set.keep) return out;
  const interval = runInterval(set);
  const span = keepSpan(set.keep, interval);
  if (span === undefined) return out;
  const n = set.fullEvery;
  const unit = interval ?? 1;
  if (n * unit <= span) return out;
  const keep = Object.entries(set.keep)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ");
  const chain = interval === undefined ? `${n} backups` : `${n} backups, ${duration(n * interval)}`;
  const most = Math.max(1, Math.floor(span / unit));
  const holds =
    (set.keep.last ?? 0) * unit === span ? `; the set holds up to ${span / unit + n - 1} backups` : "";
  out.push(
    `sets.${id}.keep: { ${keep} } covers less than one chain (fullEvery ${n}${fullEveryGiven ? "" : ", the default"}: ${chain}): ` +
      `a kept incremental keeps its whole chain, so prune deletes nothing until a whole chain is older than what keep asks for${holds}; ` +
      `set sets.${id}.fullEvery to ${most} or less, or keep more`,
  );
  return out;
}
