import http from "node:http";

/*
 * Clients of the daemon's control socket for tests (src/daemon/control.ts serves it): plain
 * node:http on the unix socket, as the CLI's client does.
 */

/**
 * GET `p` on the daemon's socket; resolves once the answer has begun (its status), with `lines`:
 * the NDJSON lines once it has ended (a JSON answer is one line).
 */
export function ndjson(
  socketPath: string,
  p: string,
): Promise<{ status: number | undefined; lines: Promise<unknown[]> }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: p }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          body += d;
        });
        const lines = new Promise<unknown[]>((done) =>
          res.on("end", () =>
            done(
              body
                .split("\n")
                .filter((l) => l.trim() !== "")
                .map((l) => JSON.parse(l)),
            ),
          ),
        );
        resolve({ status: res.statusCode, lines });
      })
      .on("error", reject);
  });
}

/** GET a path of the daemon's control socket; its JSON (a one-line answer). */
export async function getJson(socketPath: string, p: string): Promise<unknown> {
  const [json] = await (await ndjson(socketPath, p)).lines;
  return json;
}
