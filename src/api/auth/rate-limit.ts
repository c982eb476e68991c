import type { Clock } from "../../platform/clock.ts";

/**
 * Failed logins counted per client address and per user name (known or not, so the limit says
 * nothing about which exist): past `max` failures within `windowMs`, that address or name is
 * refused (429 RATE_LIMITED, Retry-After) until the oldest failure leaves the window. A success
 * clears the name's count and the address's. In memory: a restart forgets them.
 */
export class FailureLimiter {
  readonly #fails = new Map<string, number[]>();
  readonly #clock: Clock;
  readonly max: number;
  readonly windowMs: number;

  constructor(clock: Clock, max = 5, windowMs = 60_000) {
    this.#clock = clock;
    this.max = max;
    this.windowMs = windowMs;
  }

  #recent(k: string, now: number): number[] {
    const list = (this.#fails.get(k) ?? []).filter((t) => now - t < this.windowMs);
    if (list.length) this.#fails.set(k, list);
    else this.#fails.delete(k);
    return list;
  }

  /** Seconds to wait before `keys` may try again (0: go ahead). */
  retryAfter(keys: string[]): number {
    const now = this.#clock.now().getTime();
    let wait = 0;
    for (const k of keys) {
      const list = this.#recent(k, now);
      if (list.length >= this.max) {
        const oldest = list[list.length - this.max] as number;
        wait = Math.max(wait, Math.ceil((oldest + this.windowMs - now) / 1000));
      }
    }
    return wait;
  }

  fail(keys: string[]): void {
    const now = this.#clock.now().getTime();
    for (const k of keys) {
      const list = this.#recent(k, now);
      list.push(now);
      // Only the last `max` matter; an address hammering forever keeps a bounded list.
      this.#fails.set(k, list.slice(-this.max));
    }
    // Bounded memory under a spray of names: forget the oldest keys beyond 10 000.
    if (this.#fails.size > 10_000)
      for (const k of [...this.#fails.keys()].slice(0, 1000)) this.#fails.delete(k);
  }

  succeed(keys: string[]): void {
    for (const k of keys) this.#fails.delete(k);
  }
}
