import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { nextRun, nextRuns, type ScheduleSpec, slotsBetween } from "../src/schedule/schedule.ts";

/*
 * An oracle independent of croner: the contract's rule (docs/design.md) for one local date D and
 * time T is "the earliest instant whose local date is D and whose local time is >= T". That single
 * rule gives the normal case, the end of a DST gap, and the first of a repeated hour.
 */
const fmtCache = new Map<string, Intl.DateTimeFormat>();
function wallMs(t: number, tz: string): number {
  let f = fmtCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    fmtCache.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const x of f.formatToParts(new Date(t))) if (x.type !== "literal") p[x.type] = Number(x.value);
  return Date.UTC(p.year ?? 0, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0);
}

function resolveLocal(y: number, mo: number, d: number, h: number, mi: number, tz: string): number {
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  const offsets = new Set([
    wallMs(wall - 86_400_000, tz) - (wall - 86_400_000),
    wallMs(wall + 86_400_000, tz) - (wall + 86_400_000),
  ]);
  const exact = [...offsets].map((o) => wall - o).filter((t) => wallMs(t, tz) === wall);
  if (exact.length > 0) return Math.min(...exact);
  // In a gap: the smallest instant whose wall time is >= the wanted one (the end of the gap).
  let lo = wall - 26 * 3_600_000;
  let hi = wall + 26 * 3_600_000;
  while (hi - lo > 60_000) {
    const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
    if (wallMs(mid, tz) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

const WD = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

function oracle(spec: ScheduleSpec, fromMs: number, toMs: number, tz: string): number[] {
  const [h, mi] = spec.time.split(":").map(Number) as [number, number];
  const start = new Date(wallMs(fromMs, tz) - 2 * 86_400_000);
  const out: number[] = [];
  for (
    let day = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
    ;
    day += 86_400_000
  ) {
    const dt = new Date(day);
    const y = dt.getUTCFullYear();
    const mo = dt.getUTCMonth() + 1;
    const d = dt.getUTCDate();
    const monthLen = new Date(Date.UTC(y, mo, 0)).getUTCDate();
    let match = false;
    if (spec.frequency === "daily") match = true;
    else if (spec.frequency === "weekly") match = WD[dt.getUTCDay()] === spec.day;
    else if (spec.frequency === "monthly")
      match = spec.day === "last" ? d === monthLen : d === Math.min(Number(spec.day), monthLen);
    if (!match) continue;
    const t = resolveLocal(y, mo, d, h, mi, tz);
    if (t > toMs) break;
    if (t > fromMs) out.push(t);
  }
  return out;
}

const ZONES = ["Europe/Paris", "America/New_York", "America/Santiago", "Australia/Sydney", "Asia/Kolkata"];
const TIMES = ["00:00", "00:30", "01:30", "02:00", "02:30", "03:00", "04:00", "23:30"];
const FROM = Date.parse("2026-01-01T00:00:00Z");
const TO = Date.parse("2028-01-01T00:00:00Z");

describe("two years of slots match the contract's rule in every zone", () => {
  for (const tz of ZONES) {
    test(tz, () => {
      const specs: ScheduleSpec[] = [
        ...TIMES.map((time) => ({ frequency: "daily" as const, time })),
        ...["sunday", "saturday", "wednesday"].flatMap((day) =>
          ["00:00", "02:30", "04:00"].map((time) => ({ frequency: "weekly" as const, day, time })),
        ),
        ...[1, 15, 28, 29, 30, 31, "last"].flatMap((day) =>
          ["00:00", "02:30", "04:00"].map((time) => ({ frequency: "monthly" as const, day, time })),
        ),
      ];
      for (const spec of specs) {
        const want = oracle(spec, FROM, TO, tz);
        const chained: number[] = [];
        for (let t = nextRun(spec, new Date(FROM), tz); t && t.getTime() <= TO; t = nextRun(spec, t, tz))
          chained.push(t.getTime());
        const label = `${tz} ${JSON.stringify(spec)}`;
        assert.deepEqual(chained.map(iso), want.map(iso), label);
        const batch = nextRuns(spec, new Date(FROM), tz, want.length).map((d) => d.getTime());
        assert.deepEqual(batch, want, label);
        assert.equal(slotsBetween(spec, new Date(FROM), new Date(TO), tz).count, want.length, label);
        // Never doubled: strictly increasing, one per local date.
        for (let i = 1; i < want.length; i++) assert.ok((want[i] as number) > (want[i - 1] as number));
      }
    });
  }
});

const iso = (t: number) => new Date(t).toISOString();

interface Row {
  tz: string;
  spec: ScheduleSpec;
  from: string;
  want: string[];
  why: string;
}

const ROWS: Row[] = [
  {
    tz: "Europe/Paris",
    spec: { frequency: "daily", time: "02:30" },
    from: "2026-03-28T12:00:00Z",
    want: ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"],
    why: "02:30 does not exist on the spring-forward day: runs at 03:00 local, the end of the gap",
  },
  {
    tz: "Europe/Paris",
    spec: { frequency: "daily", time: "02:30" },
    from: "2026-10-24T12:00:00Z",
    want: ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"],
    why: "02:30 happens twice on the fall-back day: runs once, at the first (CEST)",
  },
  {
    tz: "Europe/Paris",
    spec: { frequency: "daily", time: "02:30" },
    from: "2026-10-25T00:45:00Z",
    want: ["2026-10-26T01:30:00.000Z"],
    why: "between the two 02:30s: the second one is not a new slot",
  },
  {
    tz: "America/New_York",
    spec: { frequency: "weekly", day: "sunday", time: "02:30" },
    from: "2026-03-02T00:00:00Z",
    want: ["2026-03-08T07:00:00.000Z", "2026-03-15T06:30:00.000Z"],
    why: "a weekly Sunday 02:30 on the spring-forward Sunday runs at 03:00 EDT",
  },
  {
    tz: "America/New_York",
    spec: { frequency: "weekly", day: "sunday", time: "01:30" },
    from: "2026-10-26T00:00:00Z",
    want: ["2026-11-01T05:30:00.000Z", "2026-11-08T06:30:00.000Z"],
    why: "01:30 twice on the fall-back Sunday: once, EDT",
  },
  {
    tz: "America/Santiago",
    spec: { frequency: "daily", time: "00:00" },
    from: "2026-09-05T12:00:00Z",
    want: ["2026-09-06T04:00:00.000Z", "2026-09-07T03:00:00.000Z"],
    why: "Chile springs forward at midnight: 00:00 does not exist, the day starts (and runs) at 01:00",
  },
  {
    tz: "America/Santiago",
    spec: { frequency: "daily", time: "23:30" },
    from: "2026-04-04T12:00:00Z",
    want: ["2026-04-05T02:30:00.000Z", "2026-04-06T03:30:00.000Z"],
    why: "Chile falls back at midnight: 23:30 Saturday happens twice, runs at the first",
  },
  {
    tz: "Australia/Sydney",
    spec: { frequency: "daily", time: "02:30" },
    from: "2026-10-03T00:00:00Z",
    want: ["2026-10-03T16:00:00.000Z", "2026-10-04T15:30:00.000Z"],
    why: "southern spring-forward in October",
  },
  {
    tz: "Asia/Kolkata",
    spec: { frequency: "daily", time: "04:00" },
    from: "2026-03-28T00:00:00Z",
    want: ["2026-03-28T22:30:00.000Z", "2026-03-29T22:30:00.000Z"],
    why: "no DST, a half-hour offset",
  },
  {
    tz: "Europe/Paris",
    spec: { frequency: "monthly", day: 31, time: "04:00" },
    from: "2026-01-01T00:00:00Z",
    want: [
      "2026-01-31T03:00:00.000Z",
      "2026-02-28T03:00:00.000Z",
      "2026-03-31T02:00:00.000Z",
      "2026-04-30T02:00:00.000Z",
    ],
    why: "day 31 runs on the last day of shorter months (croner alone skips them)",
  },
  {
    tz: "UTC",
    spec: { frequency: "monthly", day: 29, time: "04:00" },
    from: "2028-01-30T00:00:00Z",
    want: ["2028-02-29T04:00:00.000Z", "2028-03-29T04:00:00.000Z"],
    why: "day 29 in a leap February: the 29th, once (not also as its last day)",
  },
  {
    tz: "UTC",
    spec: { frequency: "monthly", day: 30, time: "04:00" },
    from: "2027-01-30T05:00:00Z",
    want: ["2027-02-28T04:00:00.000Z", "2027-03-30T04:00:00.000Z"],
    why: "day 30 in February: its last day",
  },
  {
    tz: "UTC",
    spec: { frequency: "monthly", day: "last", time: "23:59" },
    from: "2027-02-01T00:00:00Z",
    want: ["2027-02-28T23:59:00.000Z", "2027-03-31T23:59:00.000Z"],
    why: "last",
  },
  {
    tz: "UTC",
    spec: { frequency: "daily", time: "04:00" },
    from: "2026-01-01T04:00:00Z",
    want: ["2026-01-02T04:00:00.000Z"],
    why: "strictly after: a slot equal to `after` is not returned again",
  },
  {
    tz: "UTC",
    spec: { frequency: "daily", time: "04:00" },
    from: "2026-01-01T03:59:59.999Z",
    want: ["2026-01-01T04:00:00.000Z"],
    why: "one millisecond before a slot",
  },
];

describe("table: time zone × DST day", () => {
  for (const r of ROWS) {
    test(`${r.tz} ${JSON.stringify(r.spec)} from ${r.from}: ${r.why}`, () => {
      const got = nextRuns(r.spec, new Date(r.from), r.tz, r.want.length).map((d) => d.toISOString());
      assert.deepEqual(got, r.want);
    });
  }
  test("frequency now is never scheduled", () => {
    const spec: ScheduleSpec = { frequency: "now", time: "04:00" };
    assert.equal(nextRun(spec, new Date(), "UTC"), undefined);
    assert.deepEqual(nextRuns(spec, new Date(), "UTC", 5), []);
    assert.equal(slotsBetween(spec, new Date(0), new Date(), "UTC").count, 0);
  });
});

test("what croner alone gets wrong for the contract (and the wrapper corrects): day 31 skips short months", async () => {
  const { Cron } = await import("croner");
  const raw = new Cron("0 0 4 31 * *", { timezone: "UTC", paused: true })
    .nextRuns(2, new Date("2026-01-31T05:00:00Z"))
    .map((d) => d.toISOString());
  assert.deepEqual(raw, ["2026-03-31T04:00:00.000Z", "2026-05-31T04:00:00.000Z"]);
  const ours = nextRuns(
    { frequency: "monthly", day: 31, time: "04:00" },
    new Date("2026-01-31T05:00:00Z"),
    "UTC",
    2,
  );
  assert.deepEqual(
    ours.map((d) => d.toISOString()),
    ["2026-02-28T04:00:00.000Z", "2026-03-31T04:00:00.000Z"],
  );
});
