import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { BschedError } from "../../core/errors.ts";
import type { Log } from "../../daemon/scheduler.ts";
import { addUser } from "../../ops/users.ts";
import type { Clock } from "../../platform/clock.ts";
import type { Api } from "../api.ts";
import type { Auth } from "./auth.ts";
import { checkPassword, DUMMY_HASH, MAX_PASSWORD } from "./password.ts";
import { FailureLimiter } from "./rate-limit.ts";
import { CSRF_HEADER, SESSION_COOKIE, type Session, Sessions, sameToken } from "./sessions.ts";
import { SetupLink } from "./setup-link.ts";
import { cachedUsers, readUsers } from "./users.ts";

/**
 * The Auth the daemon uses (docs/design.md "The window and its API", Security): users from
 * `<state>/users.json`, sessions in memory behind an httpOnly SameSite=Strict cookie (Secure
 * under TLS), a CSRF token per session on every change, failed logins limited per address and
 * per name, and the one-time setup link while no user exists.
 */

const CHANGES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export const sessionSchema = z.object({ user: z.string(), csrf: z.string() });
const loginBody = z.object({
  user: z.string().min(1).max(200),
  password: z.string().min(1).max(MAX_PASSWORD),
});
const setupBody = z.object({
  token: z.string().min(1).max(200),
  user: z.string().min(1).max(200),
  password: z.string().max(MAX_PASSWORD),
});

export interface SessionAuthOptions {
  state: string;
  clock: Clock;
  log: Log;
  /** Served over TLS: the cookie is Secure. */
  secure: boolean;
  /** Failed logins allowed per address and per name within `windowMs` (default 5 per minute). */
  maxFailures?: number;
  windowMs?: number;
  idleMs?: number;
}

export interface SessionAuth extends Auth {
  readonly sessions: Sessions;
  readonly setup: SetupLink;
  /**
   * At the daemon's start, once the window listens at `url`: with no user, issue the setup link
   * and log it (its token is in that line only); returns it, or undefined when users exist.
   */
  announce(url: string): string | undefined;
}

function unauthenticated(): BschedError {
  return new BschedError("UNAUTHENTICATED", "not logged in (or the session expired)", {
    hint: "log in at the window (a daemon restart or 12 h unused end a session)",
  });
}

/** Whether a request is for the API (everything under /api needs a session unless its route is public). */
function isApi(req: FastifyRequest): boolean {
  let p = req.url.split("?")[0] ?? "";
  try {
    p = decodeURIComponent(p);
  } catch {
    // A malformed escape: judged as written.
  }
  if (/^\/+api(\/|$)/i.test(p)) return true;
  // The matched route last: fastify's routeOptions getter costs more than the whole check above
  // (it showed in a profile of the API under load), and an API URL is answered without it.
  return req.routeOptions.url?.startsWith("/api") === true;
}

export function sessionAuth(opts: SessionAuthOptions): SessionAuth {
  const { clock, state } = opts;
  const sessions = new Sessions(clock, opts.idleMs);
  const setup = new SetupLink(clock);
  const limiter = new FailureLimiter(clock, opts.maxFailures, opts.windowMs);
  const users = cachedUsers(state);
  const cookieOpts = { httpOnly: true, sameSite: "strict" as const, secure: opts.secure, path: "/" };

  /** The request's live session, its user still there with the same password; else undefined. */
  const current = (req: FastifyRequest): Session | undefined => {
    const id = req.cookies?.[SESSION_COOKIE];
    const s = sessions.get(id);
    if (!s) return undefined;
    const rec = users().users.get(s.user);
    if (!rec || rec.passwordSetAt !== s.passwordSetAt) {
      sessions.close(id);
      return undefined;
    }
    return s;
  };

  const limited = (reply: FastifyReply, keys: string[]): void => {
    const wait = limiter.retryAfter(keys);
    if (wait > 0) {
      void reply.header("retry-after", String(wait));
      throw new BschedError("RATE_LIMITED", `too many failed logins: try again in ${wait} s`, {
        hint: `wait ${wait} s; a forgotten password is reset with \`bsched user passwd NAME\` on the server`,
      });
    }
  };

  const login = (reply: FastifyReply, user: string, passwordSetAt: string) => {
    const { id, session } = sessions.open(user, passwordSetAt);
    void reply.setCookie(SESSION_COOKIE, id, cookieOpts);
    return { user, csrf: session.csrf };
  };

  return {
    sessions,
    setup,
    async guard(req: FastifyRequest, _reply: FastifyReply) {
      if (!isApi(req) || req.routeOptions.config?.public === true) return;
      const s = current(req);
      if (!s) throw unauthenticated();
      if (CHANGES.has(req.method) && !sameToken(s.csrf, req.headers[CSRF_HEADER] as string | undefined))
        throw new BschedError(
          "CSRF",
          `a change without this session's CSRF token (${CSRF_HEADER}) is refused`,
          {
            hint: "reload the window (GET /api/session gives the token)",
          },
        );
      req.user = s.user;
    },

    routes(app: Api) {
      app.post(
        "/login",
        {
          config: { public: true },
          schema: {
            summary: "Log in: a session cookie and the session's CSRF token (public, rate limited)",
            tags: ["session"],
            body: loginBody,
            response: { 200: sessionSchema },
          },
        },
        async (req, reply) => {
          const { user, password } = req.body;
          const keys = [`ip:${req.ip}`, `user:${user.toLowerCase()}`];
          limited(reply, keys);
          // Counted before the check: parallel guesses cannot outrun the limit.
          limiter.fail(keys);
          const rec = users().users.get(user);
          // An unknown user costs one scrypt too, and gets the same answer as a wrong password.
          const ok = await checkPassword(password, rec?.password ?? DUMMY_HASH);
          if (!ok || !rec)
            throw new BschedError("UNAUTHENTICATED", "wrong user name or password", {
              hint: `after ${limiter.max} failures in a minute, logins wait; \`bsched user passwd NAME\` on the server sets a new password`,
            });
          limiter.succeed(keys);
          sessions.close(req.cookies?.[SESSION_COOKIE]);
          return login(reply, user, rec.passwordSetAt);
        },
      );

      app.post(
        "/setup",
        {
          config: { public: true },
          schema: {
            summary:
              "Create the first administrator with the one-time setup link's token, and log in (public; works once)",
            tags: ["session"],
            body: setupBody,
            response: { 200: sessionSchema },
          },
        },
        async (req, reply) => {
          const { token, user, password } = req.body;
          const keys = [`ip:${req.ip}`];
          limited(reply, keys);
          if (setup.live && readUsers(state).users.size > 0) setup.end();
          if (!setup.check(token)) {
            limiter.fail(keys);
            throw new BschedError(
              "UNAUTHENTICATED",
              "this setup link is not valid: wrong, expired (24 h) or already used",
              {
                hint: "log in if the administrator exists; else restart the daemon for a new link, or run `bsched user add NAME` on the server",
              },
            );
          }
          // A bad name or password is refused with the link still valid: the form can be corrected.
          const made = await addUser({ state, name: user, password, clock, onlyIfNone: true }).catch((e) => {
            if (e instanceof BschedError && e.code === "USER_EXISTS") {
              setup.end();
              throw new BschedError(
                "UNAUTHENTICATED",
                "this setup link is not valid: wrong, expired (24 h) or already used",
                {
                  hint: "log in with the administrator's name and password",
                },
              );
            }
            throw e;
          });
          setup.end();
          opts.log.info({ user: made.name }, "window: first administrator created with the setup link");
          return login(reply, made.name, made.passwordSetAt);
        },
      );

      app.post(
        "/logout",
        {
          schema: {
            summary: "End the session",
            tags: ["session"],
            response: { 200: z.object({ ok: z.boolean() }) },
          },
        },
        async (req, reply) => {
          sessions.close(req.cookies?.[SESSION_COOKIE]);
          void reply.clearCookie(SESSION_COOKIE, cookieOpts);
          return { ok: true };
        },
      );

      app.get(
        "/session",
        {
          schema: {
            summary: "The current session's user and CSRF token (401 without one)",
            tags: ["session"],
            response: { 200: sessionSchema },
          },
        },
        async (req) => {
          const s = current(req);
          if (!s) throw unauthenticated();
          return { user: s.user, csrf: s.csrf };
        },
      );
    },

    announce(url: string) {
      if (readUsers(state).users.size > 0) return undefined;
      const link = `${url.replace(/\/$/, "")}/setup#token=${setup.issue()}`;
      opts.log.warn(
        {},
        `no user can log in to the window yet: open ${link} to create the first administrator (works once, within 24 h), or run \`bsched user add NAME\``,
      );
      return link;
    },
  };
}
