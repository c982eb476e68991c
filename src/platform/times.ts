/**
 * Node's utimes takes seconds as a double and libuv keeps whole microseconds of it, truncating.
 * Passing the middle of the wanted microsecond makes that truncation land on it exactly, so
 * restored times are exact to the microsecond (the finest this API can set).
 */
export function nsToSeconds(ns: string): number {
  const us = BigInt(ns) / 1000n;
  const sec = us / 1_000_000n;
  const rem = us % 1_000_000n;
  return Number(sec) + (Number(rem) + 0.5) / 1e6;
}
