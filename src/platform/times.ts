/**
 * Node's utimes takes seconds as a double and libuv keeps whole microseconds of it, truncating
 * toward zero. Passing the middle of the wanted microsecond (half a microsecond further from
 * zero) makes that truncation land on it exactly, so restored times are exact to the
 * microsecond (the finest this API can set), before 1970 too.
 */
export function nsToSeconds(ns: string): number {
  const us = BigInt(ns) / 1000n;
  const sec = us / 1_000_000n;
  const rem = us % 1_000_000n;
  return Number(sec) + (Number(rem) + (us < 0n ? -0.5 : 0.5)) / 1e6;
}

/**
 * The time to give fs.utimes, lutimes and FileHandle.utimes. Node replaces a negative number
 * (a time before 1970) with the current time, but takes a numeric string as it is.
 */
export function utimesArg(ns: string): number | string {
  const s = nsToSeconds(ns);
  return s < 0 ? String(s) : s;
}
