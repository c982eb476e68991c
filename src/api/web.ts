import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { WebConfig } from "../config/load.ts";
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
export async function startWeb(
  deps: Omit<ApiDeps, "webRoot"> & { webRoot?: string; web?: WebConfig },
): Promise<WebServer> {
  // `web`: the settings the daemon started with (server.web, or bsched demo's --listen over it).
  const web = deps.web ?? deps.service.config.web;
  const https = web.tls ? await readTls(web.tls) : undefined;
  let app: Awaited<ReturnType<typeof buildApi>>;
  try {
    app = await buildApi({ ...deps, webRoot: deps.webRoot ?? WEB_ROOT, https });
  } catch (e) {
    // A certificate and key that do not go together, or that are not PEM: node's TLS says which.
    if (https && !(e instanceof BschedError))
      throw new BschedError("CONFIG_INVALID", `server.web.tls: ${(e as Error).message}`, {
        hint: "give the PEM certificate (cert) and its private key (key), unencrypted, e.g. from `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -subj /CN=HOST`",
        cause: e,
      });
    throw e;
  }
  if (!LOOPBACK.test(web.host) && !web.tls)
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
    if (errnoCode(e) === "EADDRNOTAVAIL")
      throw new BschedError(
        "CONFIG_INVALID",
        `server.web.listen: ${web.host} is not an address of this machine`,
        {
          hint: "listen on 127.0.0.1 (this machine only), or on one of its addresses",
        },
      );
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : web.port;
  // Listening on every address: the URL printed is this machine's loopback one, which works here.
  const shown = web.host === "0.0.0.0" ? "127.0.0.1" : web.host === "::" ? "::1" : web.host;
  const host = shown.includes(":") ? `[${shown}]` : shown;
  return {
    url: `${web.tls ? "https" : "http"}://${host}:${port}/`,
    async close() {
      // An open event stream (SSE) would hold close() forever: after 2 s, every connection is cut.
      const force = setTimeout(() => app.server.closeAllConnections(), 2000);
      try {
        await app.close();
      } finally {
        clearTimeout(force);
      }
    },
  };
}

/** The PEM files of server.web.tls, read at start: a missing one names the key and the file. */
async function readTls(tls: { cert: string; key: string }): Promise<{ cert: Buffer; key: Buffer }> {
  const read = async (which: "cert" | "key") => {
    try {
      return await fs.readFile(tls[which]);
    } catch (e) {
      throw new BschedError(
        "CONFIG_INVALID",
        `server.web.tls.${which}: cannot read ${tls[which]} (${errnoCode(e) ?? (e as Error).message})`,
        {
          hint: `check the path (relative paths start at the config's folder) and that the user bsched runs as may read it`,
          cause: e,
        },
      );
    }
  };
  return { cert: await read("cert"), key: await read("key") };
}

/** Whether the window was built (web/dist/index.html): `bsched demo` says how to build it when not. */
export async function windowBuilt(root = WEB_ROOT): Promise<boolean> {
  return fs.access(path.join(root, "index.html")).then(
    () => true,
    () => false,
  );
}
