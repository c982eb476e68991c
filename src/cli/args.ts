// Option values several commands parse alike: their own module, so no command loads another's file.
import { BschedError } from "../core/errors.ts";

export function parseInstant(value: string, flag: string): Date {
  const t = Date.parse(value);
  // A time without an offset would be read in the machine's zone: ambiguous, so refused.
  if (Number.isNaN(t) || !/(Z|[+-]\d\d:?\d\d)$/i.test(value.trim())) {
    throw new BschedError("USAGE", `${flag} ${JSON.stringify(value)} is not an ISO-8601 instant`, {
      hint: 'give a date, time and offset, e.g. "2026-03-29T00:00:00Z" or "2026-03-29T01:00:00+01:00"',
    });
  }
  return new Date(t);
}

export function parseCount(value: string | undefined, flag: string, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) {
    throw new BschedError("USAGE", `${flag} ${JSON.stringify(value)} is not a whole number from 1 to 10000`, {
      hint: `e.g. ${flag} 5`,
    });
  }
  return n;
}
