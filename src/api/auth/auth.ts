import type { FastifyReply, FastifyRequest } from "fastify";
import type { Api } from "../api.ts";

/**
 * Who may call the API (docs/design.md "The window and its API", Security). `guard` runs before
 * every request: a route not marked `config.public` needs a valid session (401 otherwise), and a
 * change (POST, PUT, PATCH, DELETE) also the session's CSRF token in the `x-csrf-token` header
 * (403 otherwise); it sets `req.user`. Paths outside /api/ are the window's own files (code and
 * styles, no data): public, so the login form loads, and so are `/metrics` and `/healthz`, whose own
 * rules (a bearer token or loopback only; none) are applied by their route (routes/metrics.ts).
 * `routes` registers login, logout, session and setup.
 */
export interface Auth {
  guard(req: FastifyRequest, reply: FastifyReply): Promise<void>;
  routes(app: Api): void;
}
