import { z } from "zod";
import type { Api, ApiDeps } from "../api.ts";
import { EventStream } from "../event-stream.ts";

/*
 * `GET /api/events`: one Server-Sent Events stream for the whole daemon (every run of its registry,
 * scheduled or asked for, and its config reloads). The reply is taken over from fastify (hijack):
 * the stream stays open until the client leaves or the server closes, which ends every stream
 * first (preClose), so a stop never waits for a browser tab.
 */

export function eventsRoutes(app: Api, deps: ApiDeps): void {
  const open = new Set<EventStream>();
  app.addHook("preClose", async () => {
    for (const s of [...open]) s.close();
  });
  app.get(
    "/events",
    {
      schema: {
        summary:
          "Server-Sent Events: run (started/ended with result or error), progress ({runId, progress}, at most 10/s per run), warning, config",
        tags: ["events"],
        response: { 200: z.string().describe("text/event-stream") },
      },
    },
    (_req, reply) => {
      reply.hijack();
      const stream = new EventStream(reply.raw);
      open.add(stream);
      const unwatch = deps.service.runs.watch((e) => stream.run(e));
      const unconfig = deps.service.onConfig((e) => stream.config(e));
      stream.onClose(() => {
        unwatch();
        unconfig();
        open.delete(stream);
      });
    },
  );
}
