import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "../../platform/clock.ts";

/**
 * The one-time setup link (no default password): when the daemon starts with no user, it makes a
 * random token (32 bytes), keeps only its sha256 and an expiry (24 h), and prints
 * `URL/setup#token=…` to its terminal or log. The fragment never reaches a server log or a
 * Referer. `POST /api/setup` with it creates the first administrator; it works once (used, or
 * any user existing, ends it). A new link: restart the daemon while no user exists, or skip it
 * with `bsched user add NAME`.
 */
export const SETUP_TTL_MS = 24 * 3_600_000;

export class SetupLink {
  #hash: Buffer | undefined;
  #expires = 0;
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** A new token (the previous one no longer works). Returned once: only its hash is kept. */
  issue(ttlMs = SETUP_TTL_MS): string {
    const token = randomBytes(32).toString("base64url");
    this.#hash = createHash("sha256").update(token).digest();
    this.#expires = this.#clock.now().getTime() + ttlMs;
    return token;
  }

  /** Whether `token` is the live one: right, not expired, not used. */
  check(token: string): boolean {
    if (!this.#hash || this.#clock.now().getTime() >= this.#expires) return false;
    return timingSafeEqual(createHash("sha256").update(token).digest(), this.#hash);
  }

  /** Used (or no longer needed): no token works any more. */
  end(): void {
    this.#hash = undefined;
  }

  get live(): boolean {
    return this.#hash !== undefined && this.#clock.now().getTime() < this.#expires;
  }
}
