import { isUtc, zonedParts } from "../snapshot/naming.ts";

/**
 * "2026-03-29 03:00 CEST"-style local rendering for people (`next`, `status`, the window's next
 * runs). Its own module so that `status` does not load `next`'s command file.
 */
export function localTime(d: Date, tz: string): string {
  const p = zonedParts(d, tz);
  const zone = isUtc(tz)
    ? "UTC"
    : (new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "short" })
        .formatToParts(d)
        .find((x) => x.type === "timeZoneName")?.value ?? tz);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${zone}`;
}
