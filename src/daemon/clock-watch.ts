/**
 * Notices a clock jump or a suspended machine between two looks at the clock: the wall clock
 * (`Clock.now`) moved by more, or less, than the monotonic one (`Clock.monotonic`), which NTP and
 * `date -s` never move and which stands still while the machine sleeps. The scheduler then says so
 * in its log; what runs is decided by the schedule rules as always (slots in (handled, now] are
 * due, a late one is a catch-up), so a jump changes the log, never the rules.
 */

/** A difference below this is timer drift or a busy event loop, not a jump. Default 60 s. */
export const JUMP_TOLERANCE_MS = 60_000;

export interface ClockJump {
  /** Wall time minus monotonic time elapsed since the previous look: > 0 forward, < 0 back. */
  jumpMs: number;
  /** The log's words: what happened, in a person's terms. */
  why: string;
}

export class ClockWatch {
  #last: { wall: number; mono: number } | undefined;
  readonly #toleranceMs: number;

  constructor(toleranceMs = JUMP_TOLERANCE_MS) {
    this.#toleranceMs = toleranceMs;
  }

  /** Record this look (`mono` undefined: the clock has no monotonic side, nothing is noticed). */
  observe(now: Date, mono: number | undefined): ClockJump | undefined {
    if (mono === undefined) return undefined;
    const wall = now.getTime();
    const last = this.#last;
    this.#last = { wall, mono };
    if (!last) return undefined;
    const jumpMs = wall - last.wall - (mono - last.mono);
    if (Math.abs(jumpMs) < this.#toleranceMs) return undefined;
    const by = formatSpan(Math.abs(jumpMs));
    return {
      jumpMs,
      why:
        jumpMs > 0
          ? `the clock jumped forward by ${by}, or the machine was suspended that long`
          : `the clock went back by ${by}`,
    };
  }
}

/** 90 000 → "1 min 30 s"; 10 800 000 → "3 h". */
export function formatSpan(ms: number): string {
  let s = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["min", 60],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)} ${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s} s`);
  return parts.join(" ");
}
