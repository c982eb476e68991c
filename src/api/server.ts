import { existsSync } from "node:fs";
import path from "node:path";
import { constants as zlibConstants } from "node:zlib";
import fastifyCompress from "@fastify/compress";
import fastifyCookie from "@fastify/cookie";
import fastifyStatic from "@fastify/static";
import fastifySwagger from "@fastify/swagger";
import Fastify from "fastify";
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import { VERSION } from "../version.ts";
import type { Api, ApiDeps } from "./api.ts";
import { toApiError } from "./errors.ts";
import { backupsRoutes } from "./routes/backups.ts";
import { destinationRoutes } from "./routes/destinations.ts";
import { eventsRoutes } from "./routes/events.ts";
import { historyRoutes } from "./routes/history.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { restoreRoutes } from "./routes/restore.ts";
import { runsRoutes } from "./routes/runs.ts";
import { settingsRoutes } from "./routes/settings.ts";
import { statusRoutes } from "./routes/status.ts";
import { systemRoutes } from "./routes/system.ts";

/** Everything under this prefix is the API; the rest is the window. */
export const API_PREFIX = "/api";

/**
 * The API and the window as a fastify instance, not listening (web.ts listens; tests may use
 * `inject`). Order matters: the auth guard runs on every request before any route, so a route
 * added later is protected unless it says `config: { public: true }`.
 */
export async function buildApi(deps: ApiDeps): Promise<Api> {
  const app = Fastify({
    logger: false,
    // Bodies are small settings and commands; a large one is a mistake or an attack.
    bodyLimit: 1 << 20,
    // Behind nothing by default: the client address is the socket's (rate limits key on it).
    trustProxy: false,
    // Over TLS when server.web.tls is set (web.ts); a plain http server otherwise.
    ...(deps.https ? { https: deps.https } : {}),
  } as { logger: false }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((e, _req, reply) => {
    const { status, body } = toApiError(e);
    if (status >= 500) deps.log.error({ err: (e as Error).message }, "api: request failed");
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({
      error: {
        code: "NOT_FOUND",
        message: `no such route: ${req.method} ${req.url.split("?")[0]}`,
        hint: null,
      },
    });
  });
  await app.register(fastifyCookie);
  // API answers (a history page, a backup's file list) go compressed to a browser that asks; at a
  // low brotli level, as the answer is made per request. The window's own files are compressed
  // once at build time (preCompressed below); the event stream is hijacked and never buffered.
  await app.register(fastifyCompress, {
    encodings: ["br", "gzip"],
    threshold: 1024,
    brotliOptions: { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4 } },
  });
  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: "bsched",
        description: "The Backup Scheduler's API: what its window uses",
        version: VERSION,
      },
    },
    transform: jsonSchemaTransform,
  });
  app.addHook("onRequest", (req, reply) => deps.auth.guard(req, reply));
  await app.register(
    async (api) => {
      const a = api as unknown as Api;
      deps.auth.routes(a);
      statusRoutes(a, deps);
      settingsRoutes(a, deps);
      systemRoutes(a, deps);
      destinationRoutes(a, deps);
      historyRoutes(a, deps);
      runsRoutes(a, deps);
      eventsRoutes(a, deps);
      backupsRoutes(a, deps);
      restoreRoutes(a, deps);
      a.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
    },
    { prefix: API_PREFIX },
  );
  // Outside /api, each with its own access rule (not the session's): routes/metrics.ts.
  metricsRoutes(app as unknown as Api, deps);
  if (deps.webRoot !== undefined && existsSync(path.join(deps.webRoot, "index.html"))) {
    // The window's own files: code and styles, no data (the guard lets them through without a
    // session so the login form can load); every other path is the window too (its routes).
    await app.register(fastifyStatic, {
      root: deps.webRoot,
      prefix: "/",
      wildcard: false,
      // An array: with preCompressed, @fastify/static looks a directory's index up only in a list.
      index: ["index.html"],
      preCompressed: true,
    });
    app.get("/*", { schema: { hide: true } }, (req, reply) => {
      if (req.url.startsWith(`${API_PREFIX}/`))
        return reply.status(404).send({
          error: { code: "NOT_FOUND", message: `no such route: ${req.url.split("?")[0]}`, hint: null },
        });
      return reply.type("text/html").sendFile("index.html");
    });
  }
  return app as unknown as Api;
}
