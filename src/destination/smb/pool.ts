import { type SmbLogin, SmbSession } from "./session.ts";
import type { SmbPlace } from "./smb-errors.ts";

/** At least this many smbclient processes per destination may run (a stream being read holds one). */
const MIN_SESSIONS = 3;

/**
 * The smbclient sessions of one destination: an operation takes an idle one (or starts one, up to
 * its most, or waits), so a stream still being read never blocks the next operation. A session
 * that died (the server went away, a stream stopped early) is dropped; the next use reconnects.
 */
export class SessionPool {
  readonly #login: () => SmbLogin;
  readonly #place: SmbPlace;
  readonly #idle: SmbSession[] = [];
  #count = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #max: number;

  /** `most`: sessions at once (a copy's `transfers` plus one), never fewer than MIN_SESSIONS. */
  constructor(login: () => SmbLogin, place: SmbPlace, most = MIN_SESSIONS) {
    this.#login = login;
    this.#place = place;
    this.#max = Math.max(MIN_SESSIONS, most);
  }

  async acquire(): Promise<SmbSession> {
    for (;;) {
      const s = this.#idle.pop();
      if (s) {
        if (s.alive) return s;
        this.#count--;
        continue;
      }
      if (this.#count < this.#max) {
        this.#count++;
        try {
          return await SmbSession.start(this.#login(), this.#place);
        } catch (e) {
          this.#count--;
          this.#waiting.shift()?.();
          throw e;
        }
      }
      await new Promise<void>((r) => this.#waiting.push(r));
    }
  }

  release(s: SmbSession): void {
    if (s.alive) this.#idle.push(s);
    else this.#count--;
    this.#waiting.shift()?.();
  }

  /**
   * Run `fn` with a session, given back after (or dropped when it died). A session kept idle may
   * have lost its connection meanwhile (the server restarted, or dropped an idle client): when
   * its first command finds it gone, `fn` runs once more on a new session.
   */
  async use<T>(fn: (s: SmbSession) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const s = await this.acquire();
      const reused = this.#used.has(s);
      try {
        const out = await fn(s);
        this.#used.add(s);
        return out;
      } catch (e) {
        if (attempt === 0 && reused && !s.alive && (e as { code?: string }).code === "UNREACHABLE") continue;
        throw e;
      } finally {
        this.#used.add(s);
        this.release(s);
      }
    }
  }

  /** Sessions that served before: a new one has just proved its connection. */
  readonly #used = new WeakSet<SmbSession>();

  async close(): Promise<void> {
    const all = this.#idle.splice(0);
    this.#count -= all.length;
    await Promise.all(all.map((s) => s.close()));
  }
}
