import http from "node:http";
import type { AddressInfo } from "node:net";
import type { NotifyPayload } from "../../src/notify/webhook.ts";

export interface WebhookReceiver {
  port: number;
  /** `http://127.0.0.1:PORT` + path. */
  url(path?: string): string;
  /** The JSON bodies posted, in order. */
  posts: NotifyPayload[];
  /** Each request as received: method, content type, JSON body. */
  requests: { method: string | undefined; type: string | undefined; json: unknown }[];
  /** Stop listening (idempotent): later posts find nothing there. */
  close(): Promise<void>;
}

/**
 * A webhook receiver on 127.0.0.1 (a free port) recording what is posted to it, answering with
 * `statuses` in turn (the last one repeated; default 200). Closed by `close()` or, given `t`,
 * when the test ends.
 */
export async function webhookReceiver(
  opts: { statuses?: number[]; after?: (fn: () => Promise<void>) => void } = {},
): Promise<WebhookReceiver> {
  const statuses = opts.statuses ?? [200];
  const posts: NotifyPayload[] = [];
  const requests: WebhookReceiver["requests"] = [];
  let i = 0;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      const json = JSON.parse(body);
      posts.push(json);
      requests.push({ method: req.method, type: req.headers["content-type"], json });
      res.statusCode = statuses[Math.min(i++, statuses.length - 1)] ?? 200;
      res.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= new Promise<void>((r) => server.close(() => r()));
    return closed;
  };
  opts.after?.(close);
  return { port, url: (p = "") => `http://127.0.0.1:${port}${p}`, posts, requests, close };
}
