import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "../../platform/clock.ts";

/**
 * Logged-in sessions, in the daemon's memory (a restart logs everyone out). The cookie holds a
 * random id (32 bytes); the map is keyed by its sha256, so the ids themselves are nowhere but in
 * the browsers. Each session has its own CSRF token, sent back by login and GET /api/session and
 * required in `x-csrf-token` on every change. A session unused for `idleMs` ends.
 */

export const SESSION_COOKIE = "bsched_session";
export const CSRF_HEADER = "x-csrf-token";
/** 12 h: a working day at the window without logging in again; a forgotten tab expires overnight. */
export const IDLE_MS = 12 * 3_600_000;

export interface Session {
  user: string;
  csrf: string;
  /** The user's passwordSetAt when the session began: a newer password ends it. */
  passwordSetAt: string;
  lastSeen: number;
}

function key(id: string): string {
  return createHash("sha256").update(id).digest("base64url");
}

export class Sessions {
  readonly #map = new Map<string, Session>();
  readonly #clock: Clock;
  readonly #idleMs: number;

  constructor(clock: Clock, idleMs = IDLE_MS) {
    this.#clock = clock;
    this.#idleMs = idleMs;
  }

  /** A new session: its id (for the cookie alone) and the session. */
  open(user: string, passwordSetAt: string): { id: string; session: Session } {
    this.#sweep();
    const id = randomBytes(32).toString("base64url");
    const session: Session = {
      user,
      csrf: randomBytes(32).toString("base64url"),
      passwordSetAt,
      lastSeen: this.#clock.now().getTime(),
    };
    this.#map.set(key(id), session);
    return { id, session };
  }

  /** The live session of this cookie value (its idle time restarted), or undefined. */
  get(id: string | undefined): Session | undefined {
    if (!id || id.length > 100) return undefined;
    const k = key(id);
    const s = this.#map.get(k);
    if (!s) return undefined;
    const now = this.#clock.now().getTime();
    if (now - s.lastSeen > this.#idleMs) {
      this.#map.delete(k);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  close(id: string | undefined): void {
    if (id) this.#map.delete(key(id));
  }

  /** End every session of `user` (removed, or a new password). */
  closeUser(user: string): void {
    for (const [k, s] of this.#map) if (s.user === user) this.#map.delete(k);
  }

  get size(): number {
    return this.#map.size;
  }

  /** Expired sessions leave the map at each login: it never grows with abandoned ones. */
  #sweep(): void {
    const now = this.#clock.now().getTime();
    for (const [k, s] of this.#map) if (now - s.lastSeen > this.#idleMs) this.#map.delete(k);
  }
}

/** Whether two tokens are equal, in constant time for equal lengths (a length says nothing: all are 43). */
export function sameToken(a: string, b: string | undefined): boolean {
  if (typeof b !== "string") return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
