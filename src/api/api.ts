import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Log } from "../daemon/scheduler.ts";
import type { DaemonService } from "../daemon/service.ts";
import type { DrillSource } from "../ops/metrics.ts";
import type { Clock } from "../platform/clock.ts";
import type { Auth } from "./auth/auth.ts";

/** The fastify instance every route file registers on: zod schemas for requests and responses. */
export type Api = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/**
 * What the API serves from: the daemon (its config, catalog, runs and scheduler), the clock, the
 * daemon's log, and the authentication every route but the public ones passes through. The API
 * calls the ops layer (src/ops) exactly as the CLI does: it has no logic of its own to drift.
 */
export interface ApiDeps {
  service: DaemonService;
  clock: Clock;
  log: Log;
  auth: Auth;
  /** The built window (web/dist): served at `/`; absent: no window, the API alone. */
  webRoot?: string | undefined;
  /** PEM contents of server.web.tls: fastify takes them at construction (web.ts reads the files). */
  https?: { cert: Buffer; key: Buffer } | undefined;
  /** The last restore drill per set and destination, for /metrics; absent: no drill metrics. */
  drills?: DrillSource | undefined;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** Reachable without a session (login, setup, the window's own code): everything else needs one. */
    public?: boolean;
  }
  interface FastifyRequest {
    /** The logged-in user's name, set by the auth guard. */
    user?: string;
  }
}
