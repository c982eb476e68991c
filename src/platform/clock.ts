/** The only way the product reads the time: tests inject their own clock. */
export interface Clock {
  now(): Date;
  /**
   * Milliseconds on a clock that never jumps (not set by NTP or by hand; on Linux it also stands
   * still while the machine is suspended): the daemon compares it with `now()` between two looks
   * to notice a clock jump or a suspend (src/daemon/clock-watch.ts). Absent: not watched.
   */
  monotonic?(): number;
}

export const systemClock: Clock = { now: () => new Date(), monotonic: () => performance.now() };
