import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BschedError, errnoCode } from "../core/errors.ts";
import type { ApiDeps } from "./api.ts";
import { buildApi } from "./server.ts";

export interface WebServer {
  /** Where the window is: `http://127.0.0.1:8420/` (the port the system chose when the config said 0). */
  url: string;
  close(): Promise<void>;
}

/** The built window, beside the sources: `npm ci` builds it (package.json "prepare"). */
export const WEB_ROOT = path.join(
  path.dirname(path.dirname(path.dirname(fileURLToPath(import.meta.url)))),
  "web",
  "dist",
);

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * Serve the window and its API where `server.web` says. Over HTTPS when `tls` is given; a
 * listener reachable from other machines without TLS is allowed (a reverse proxy may front it)
 * but warned about at every start, since a password would cross the network in clear.
 */
export async function startWeb(deps: Omit<ApiDeps, "webRoot"> & { webRoot?: string }): Promise<WebServer> {
  const { web } = deps.service.config;
  const app = await buildApi({ ...deps, webRoot: deps.webRoot ?? WEB_ROOT });
  if (web.tls) {
    // fastify takes https options at construction: web-tls.ts (W1) builds it so; until then, refuse.
    throw new BschedError("CONFIG_INVALID", "server.web.tls is not supported yet", {
      hint: "remove server.web.tls",
    });
  }
  if (!LOOPBACK.test(web.host))
    deps.log.warn(
      { listen: `${web.host}:${web.port}` },
      "the window listens beyond this machine without TLS: passwords would cross the network in clear; set server.web.tls { cert, key } or listen on 127.0.0.1",
    );
  try {
    await app.listen({ host: web.host, port: web.port });
  } catch (e) {
    await app.close();
    if (errnoCode(e) === "EADDRINUSE")
      throw new BschedError(
        "LOCKED",
        `the window's address ${web.host}:${web.port} is in use by another program`,
        {
          hint: "set server.web.listen to a free port, or stop the other program",
        },
      );
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : web.port;
  const host = web.host.includes(":") ? `[${web.host}]` : web.host;
  return {
    url: `${web.tls ? "https" : "http"}://${host}:${port}/`,
    close: () => app.close(),
  };
}

/** Whether the window was built (web/dist/index.html): `bsched demo` says how to build it when not. */
export async function windowBuilt(root = WEB_ROOT): Promise<boolean> {
  return fs.access(path.join(root, "index.html")).then(
    () => true,
    () => false,
  );
}
