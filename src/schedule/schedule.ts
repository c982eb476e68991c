import { Cron } from "croner";
import type { SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import { isUtc, zonedParts } from "../snapshot/naming.ts";

/**
 * The schedule keys of a set (README "Config"), as resolved in SetConfig: `time` "HH:MM", 24-hour,
 * in the server's time zone (hourly: only its minutes count); `day` weekly: monday..sunday,
 * monthly: 1..31 or "last"; `every`: the interval in seconds (frequency every).
 */
export type ScheduleSpec = Pick<SetConfig, "frequency" | "time"> & Partial<Pick<SetConfig, "day" | "every">>;

const DOW: Record<string, number> = {
  sunday: 0,
  monday: 1,
  tuesday: 2,
  wednesday: 3,
  thursday: 4,
  friday: 5,
  saturday: 6,
};

/**
 * croner does the time-zone arithmetic (and, as verified by test/schedule-*.test.ts, already
 * runs a time inside a DST gap at the end of the gap and a repeated time once, the first time).
 * What it does not do is the monthly rule (docs/design.md "The contract"): day 29–31 means the last day of shorter months,
 * where cron skips those months. So a monthly day > 28 is the earlier of two crons: day D itself,
 * and the last day of the months that have fewer than D days.
 */
interface Compiled {
  next(after: Date): Date | null;
}

function timeParts(time: string): { h: number; m: number } {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(time);
  if (!m) {
    throw new BschedError("CONFIG_INVALID", `schedule time ${JSON.stringify(time)} is not HH:MM`, {
      hint: 'use a 24-hour time such as "04:00"',
    });
  }
  return { h: Number(m[1]), m: Number(m[2]) };
}

function cron(pattern: string, timeZone: string): Cron {
  // UTC as an offset: the same times, without loading time-zone data (naming.ts isUtc).
  return new Cron(
    pattern,
    isUtc(timeZone) ? { utcOffset: 0, paused: true } : { timezone: timeZone, paused: true },
  );
}

function compile(spec: ScheduleSpec, timeZone: string): Compiled | undefined {
  if (spec.frequency === "now") return undefined;
  if (spec.frequency === "every") {
    // Whole multiples of the interval since the epoch: the same slots on every machine and
    // after every restart, and no DST question (an interval is not a wall-clock time).
    const ms = (spec.every ?? 0) * 1000;
    if (!(ms >= 1000)) {
      throw new BschedError("CONFIG_INVALID", "frequency every needs an interval (every: 30s, 15m, 2h…)");
    }
    return { next: (d) => new Date((Math.floor(d.getTime() / ms) + 1) * ms) };
  }
  const { h, m } = timeParts(spec.time);
  if (spec.frequency === "hourly") {
    const c = cron(`0 ${m} * * * *`, timeZone);
    return { next: (d) => c.nextRun(d) };
  }
  const at = `0 ${m} ${h}`;
  if (spec.frequency === "daily") {
    const c = cron(`${at} * * *`, timeZone);
    return { next: (d) => c.nextRun(d) };
  }
  if (spec.frequency === "weekly") {
    const dow = DOW[String(spec.day ?? "sunday")];
    if (dow === undefined) {
      throw new BschedError(
        "CONFIG_INVALID",
        `weekly schedule day ${JSON.stringify(spec.day)} is not a weekday`,
        {
          hint: "use monday..sunday",
        },
      );
    }
    const c = cron(`${at} * * ${dow}`, timeZone);
    return { next: (d) => c.nextRun(d) };
  }
  const day = spec.day ?? 1;
  if (day === "last") {
    const c = cron(`${at} L * *`, timeZone);
    return { next: (d) => c.nextRun(d) };
  }
  const n = Number(day);
  if (!Number.isInteger(n) || n < 1 || n > 31) {
    throw new BschedError(
      "CONFIG_INVALID",
      `monthly schedule day ${JSON.stringify(day)} is not 1..31 or "last"`,
      {
        hint: 'use a day of the month 1..31, or "last"',
      },
    );
  }
  const exact = cron(`${at} ${n} * *`, timeZone);
  if (n <= 28) return { next: (d) => exact.nextRun(d) };
  const last = cron(`${at} L * *`, timeZone);
  const nextShortMonthEnd = (after: Date): Date | null => {
    let from = after;
    // At most 12 month-ends to find a month shorter than n days (February always is).
    for (let i = 0; i < 13; i++) {
      const r = last.nextRun(from);
      if (!r) return null;
      if (Number(zonedParts(r, timeZone).day) < n) return r;
      from = r;
    }
    return null;
  };
  return {
    next(after) {
      const a = exact.nextRun(after);
      const b = nextShortMonthEnd(after);
      if (!a) return b;
      if (!b) return a;
      return a.getTime() <= b.getTime() ? a : b;
    },
  };
}

const cache = new Map<string, Compiled | undefined>();

function compiled(spec: ScheduleSpec, timeZone: string): Compiled | undefined {
  const key = `${spec.frequency}|${spec.day ?? ""}|${spec.time}|${spec.every ?? ""}|${timeZone}`;
  if (cache.has(key)) return cache.get(key);
  const c = compile(spec, timeZone);
  if (cache.size > 1000) cache.clear();
  cache.set(key, c);
  return c;
}

/** The first run strictly after `after`; undefined for `frequency: now` (on demand only). */
export function nextRun(spec: ScheduleSpec, after: Date, timeZone: string): Date | undefined {
  return compiled(spec, timeZone)?.next(after) ?? undefined;
}

/** The next `count` runs strictly after `after`, in order; empty for `frequency: now`. */
export function nextRuns(spec: ScheduleSpec, after: Date, timeZone: string, count: number): Date[] {
  const c = compiled(spec, timeZone);
  const out: Date[] = [];
  if (!c) return out;
  let from = after;
  while (out.length < count) {
    const r = c.next(from);
    if (!r || r.getTime() <= from.getTime()) break;
    out.push(r);
    from = r;
  }
  return out;
}

/**
 * The slots in (`after`, `until`], oldest first, at most `limit` of them (the daemon only needs
 * the count and the newest of a long downtime).
 */
export function slotsBetween(
  spec: ScheduleSpec,
  after: Date,
  until: Date,
  timeZone: string,
  limit = 100_000,
): { count: number; newest: Date | undefined } {
  const c = compiled(spec, timeZone);
  let count = 0;
  let newest: Date | undefined;
  if (!c) return { count, newest };
  let from = after;
  while (count < limit) {
    const r = c.next(from);
    if (!r || r.getTime() > until.getTime() || r.getTime() <= from.getTime()) break;
    count++;
    newest = r;
    from = r;
  }
  return { count, newest };
}

/** The schedule in words, for people: "weekly sunday at 04:00", "every 30 s", "hourly at :15". */
export function describeSchedule(spec: ScheduleSpec): string {
  if (spec.frequency === "now") return "on demand only (frequency now)";
  if (spec.frequency === "every") return `every ${spec.every} s`;
  if (spec.frequency === "hourly") return `hourly at :${spec.time.slice(3)}`;
  return `${spec.frequency}${spec.day !== undefined ? ` ${spec.day}` : ""} at ${spec.time}`;
}
