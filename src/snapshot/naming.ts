/** Backup folder names: `<L>_YYYY_MM_DD_HH_MM_SS`, then `_2`, `_3`… on a collision (docs/design.md "The contract"). */

const NAME_RE = /^([A-Z])_(\d{4})_(\d{2})_(\d{2})_(\d{2})_(\d{2})_(\d{2})(?:_([2-9]|[1-9]\d+))?$/;

export function isBackupName(name: string, letter?: string): boolean {
  const m = NAME_RE.exec(name);
  return m !== null && (letter === undefined || m[1] === letter);
}

/** Formatters by time zone: making one costs far more than using it (retention calls this per backup). */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let fmt = formatters.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, fmt);
  }
  return fmt;
}

/**
 * UTC needs no time-zone data: the first Intl date formatter of a process costs about a quarter
 * of Node's own start-up (loading ICU's data), which `status` and `next` on a UTC server skip.
 */
export function isUtc(timeZone: string): boolean {
  return timeZone === "UTC" || timeZone === "Etc/UTC";
}

/** The wall-clock parts of `instant` in `timeZone`. */
export function zonedParts(instant: Date, timeZone: string) {
  const year = instant.getUTCFullYear();
  if (isUtc(timeZone) && year >= 1000 && year <= 9999) {
    // 2026-03-29T01:02:03.000Z, as Intl's en-US parts would give them (four-digit years only).
    const s = instant.toISOString();
    return {
      year: s.slice(0, 4),
      month: s.slice(5, 7),
      day: s.slice(8, 10),
      hour: s.slice(11, 13),
      minute: s.slice(14, 16),
      second: s.slice(17, 19),
    };
  }
  const fmt = formatterFor(timeZone);
  const parts: Record<string, string> = {};
  for (const p of fmt.formatToParts(instant)) parts[p.type] = p.value;
  return {
    year: parts.year ?? "0000",
    month: parts.month ?? "00",
    day: parts.day ?? "00",
    hour: parts.hour ?? "00",
    minute: parts.minute ?? "00",
    second: parts.second ?? "00",
  };
}

export function backupBaseName(letter: string, instant: Date, timeZone: string): string {
  const p = zonedParts(instant, timeZone);
  return `${letter}_${p.year}_${p.month}_${p.day}_${p.hour}_${p.minute}_${p.second}`;
}

/** The first of `base`, `base_2`, `base_3`… for which `taken` is false. */
export function uniqueName(base: string, taken: (name: string) => boolean): string {
  if (!taken(base)) return base;
  for (let n = 2; ; n++) {
    const name = `${base}_${n}`;
    if (!taken(name)) return name;
  }
}
