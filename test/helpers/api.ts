import type { FastifyReply, FastifyRequest } from "fastify";
import type { Api, ApiDeps } from "../../src/api/api.ts";
import type { Auth } from "../../src/api/auth/auth.ts";
import { buildApi } from "../../src/api/server.ts";
import type { Log } from "../../src/daemon/scheduler.ts";
import { DaemonService } from "../../src/daemon/service.ts";
import { systemClock } from "../../src/platform/clock.ts";
import { makeServer, type TestServer } from "./server.ts";

/** A log that keeps its lines, for assertions (and for what must never be in it). */
export function recordingLog(): Log & {
  lines: { level: string; msg: string; obj: Record<string, unknown> }[];
} {
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const at = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, msg, obj: obj as Record<string, unknown> });
  };
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}

/**
 * For tests of routes, not of security: every request is "test"'s, no session, no CSRF. Never in
 * src: the real Auth (src/api/auth) is what the daemon uses; the auth sweep tests that one.
 */
export const testAuth: Auth = {
  async guard(req: FastifyRequest, _reply: FastifyReply) {
    req.user = "test";
  },
  routes() {},
};

export interface ApiFixture {
  server: TestServer;
  service: DaemonService;
  app: Api;
  log: ReturnType<typeof recordingLog>;
}

/**
 * A daemon service (no control socket, no config watch) on a fresh test server root, and the API
 * built on it (not listening: use `app.inject`). `auth` defaults to testAuth. Stopped and removed after.
 */
export async function apiFixture(
  t: { after(fn: () => Promise<void>): void },
  opts: {
    setKeys?: string[];
    /** An Auth, or one made from the started service (the real one needs its state folder). */
    auth?: Auth | ((service: DaemonService) => Auth);
    deps?: Partial<ApiDeps>;
  } = {},
): Promise<ApiFixture> {
  const server = await makeServer({ ...(opts.setKeys ? { setKeys: opts.setKeys } : {}) });
  const log = recordingLog();
  const service = new DaemonService({
    configFile: server.config,
    clock: systemClock,
    log,
    watchMs: 0,
    control: false,
  });
  await service.start();
  const auth = typeof opts.auth === "function" ? opts.auth(service) : (opts.auth ?? testAuth);
  const app = await buildApi({ service, clock: systemClock, log, auth, ...opts.deps });
  t.after(async () => {
    await app.close();
    await service.stop({ graceMs: 30_000 }).catch(() => undefined);
  });
  return { server, service, app, log };
}

/** What GET /api/settings answers, as the settings tests read it. */
export type Settings = {
  hash: string;
  sets: Record<string, Record<string, unknown>>;
  system: Record<string, unknown>;
};
