import { type SessionAuth, sessionAuth } from "../../src/api/auth/session-auth.ts";
import type { DaemonService } from "../../src/daemon/service.ts";
import type { Clock } from "../../src/platform/clock.ts";
import { apiFixture, recordingLog } from "./api.ts";

/** A clock a test moves by hand (session idle time, setup link expiry, rate-limit windows). */
export class HandClock implements Clock {
  t = Date.now();
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/**
 * apiFixture with the REAL authentication (src/api/auth/session-auth.ts) on the service's state
 * folder, on a hand clock: what the daemon serves, minus the listening socket.
 */
export async function securedApi(
  t: { after(fn: () => Promise<void>): void },
  opts: { secure?: boolean } = {},
) {
  const clock = new HandClock();
  const authLog = recordingLog();
  let auth: SessionAuth | undefined;
  const f = await apiFixture(t, {
    auth: (service: DaemonService) => {
      auth = sessionAuth({ state: service.config.state, clock, log: authLog, secure: opts.secure === true });
      return auth;
    },
  });
  return { ...f, auth: auth as SessionAuth, clock, authLog };
}

/** The session cookie of a login or setup answer, as a Cookie header. */
export function cookieOf(res: { headers: Record<string, unknown> }): string {
  const set = res.headers["set-cookie"];
  const line = (Array.isArray(set) ? set : [set]).find(
    (c) => typeof c === "string" && c.startsWith("bsched_session="),
  );
  if (typeof line !== "string") throw new Error(`no session cookie in ${JSON.stringify(set)}`);
  return line.split(";")[0] as string;
}
