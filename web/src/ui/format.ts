/** How the window writes sizes, rates, durations and instants (the time zone of the browser). */

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function rate(bps: number | undefined): string {
  return bps === undefined || bps <= 0 ? "—" : `${bytes(bps)}/s`;
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "2-digit",
  weekday: "short",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

/** An instant in a time zone (the server's, for schedules), 24-hour. */
export function when(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  if (timeZone) {
    try {
      return new Intl.DateTimeFormat(undefined, {
        year: "numeric",
        month: "short",
        day: "2-digit",
        weekday: "short",
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
        timeZone,
      }).format(d);
    } catch {
      // An unknown zone in this browser: the browser's own.
    }
  }
  return dateTime.format(d);
}

/** The label of a set: the seed's tab names for the standard sets, the id for the others. */
export const TAB_NAMES: Record<string, string> = {
  data: "Data",
  archive: "Archive",
  inout: "In/Out",
  video: "Video event",
};

export const setLabel = (id: string): string => TAB_NAMES[id] ?? id;

/** The standard sets first in the seed's order, then the others by id. */
export function bySeedOrder<T>(items: T[], id: (t: T) => string): T[] {
  const order = Object.keys(TAB_NAMES);
  const rank = (x: T) => {
    const i = order.indexOf(id(x));
    return i === -1 ? order.length : i;
  };
  return [...items].sort((a, b) => rank(a) - rank(b) || id(a).localeCompare(id(b)));
}
