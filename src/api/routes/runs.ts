import { z } from "zod";
import { BschedError } from "../../core/errors.ts";
import type { Api, ApiDeps } from "../api.ts";
import { apiErrorSchema } from "../errors.ts";
import { backupModeSchema, backupTypeSchema, setParamsSchema } from "../schemas/common.ts";
import { endedBody, runInfoBody, runInfoSchema, runningBody, runStateSchema } from "../schemas/runs.ts";

/*
 * What runs now (the daemon's run registry: scheduled backups, backups asked for now, restores and
 * verifies started here), one run with its outcome once ended, cancel, and "back up now" — through
 * the daemon's queue (service.runNow), so it never overlaps a scheduled run of its set.
 */

const idParams = z.object({ id: z.string().min(1) });

export function runsRoutes(app: Api, deps: ApiDeps): void {
  const { service } = deps;

  app.get(
    "/runs",
    {
      schema: {
        summary: "Runs in progress (queued included), oldest first, each with its latest progress",
        tags: ["runs"],
        response: { 200: z.array(runInfoSchema) },
      },
    },
    async () => service.runs.list().map(runInfoBody),
  );

  app.get(
    "/runs/:id",
    {
      schema: {
        summary: "One run: running, or ended with its result or error (the last 50 ended runs are kept)",
        tags: ["runs"],
        params: idParams,
        response: { 200: runStateSchema, 404: apiErrorSchema },
      },
    },
    async (req) => {
      const running = service.runs.get(req.params.id);
      if (running) return runningBody(running.info);
      const ended = service.runs.ended(req.params.id);
      if (ended) return endedBody(ended);
      throw noSuchRun(req.params.id);
    },
  );

  app.delete(
    "/runs/:id",
    {
      schema: {
        summary:
          "Cancel a run: it stops promptly and leaves nothing partial (its ended event says CANCELLED)",
        tags: ["runs"],
        params: idParams,
        response: { 202: runStateSchema, 404: apiErrorSchema, 409: apiErrorSchema },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const running = service.runs.get(id);
      if (!running) {
        const ended = service.runs.ended(id);
        if (ended)
          return reply.status(409).send({
            error: {
              code: "CONFLICT",
              message: `run ${id} has already ended`,
              hint: `GET /api/runs/${id} shows how it ended`,
            },
          });
        throw noSuchRun(id);
      }
      running.cancel(`cancelled through the window by ${req.user ?? "a user"}`);
      return reply.status(202).send(runningBody(running.info));
    },
  );

  app.post(
    "/sets/:set/backup",
    {
      schema: {
        summary: "Back up a set now, through the daemon's queue (after a running backup of the set)",
        tags: ["runs"],
        params: setParamsSchema,
        body: z.object({ mode: backupModeSchema.optional(), type: backupTypeSchema.optional() }).nullish(),
        response: { 202: runInfoSchema, 404: apiErrorSchema, 423: apiErrorSchema },
      },
    },
    async (req, reply) => {
      const handle = service.runNow(req.params.set, { mode: req.body?.mode, type: req.body?.type });
      // Its outcome is kept by the registry (GET /api/runs/:id, the `run` event).
      handle.result.catch(() => undefined);
      return reply.status(202).send(runInfoBody(handle.info));
    },
  );
  app.post(
    "/sets/:set/drill",
    {
      schema: {
        summary:
          "Run a restore drill of a set now (issue 14): restore into the scratch folder, check, time and record it",
        tags: ["runs"],
        params: setParamsSchema,
        body: z
          .object({
            /** One place only: `local` (the set's own folder) or a destination's name. */
            dest: z.string().min(1).optional(),
            backup: z.string().min(1).optional(),
          })
          .nullish(),
        response: { 202: runInfoSchema, 404: apiErrorSchema, 423: apiErrorSchema },
      },
    },
    async (req, reply) => {
      const handle = service.drillNow(req.params.set, {
        ...(req.body?.dest === undefined ? {} : { place: req.body.dest }),
        ...(req.body?.backup === undefined ? {} : { backup: req.body.backup }),
      });
      // Its outcome is kept by the registry and recorded in the catalog (GET /api/status shows it).
      handle.result.catch(() => undefined);
      return reply.status(202).send(runInfoBody(handle.info));
    },
  );
}

function noSuchRun(id: string): BschedError {
  return new BschedError("NOT_FOUND", `no run ${id}: it never was, or ended long ago`, {
    hint: "GET /api/runs lists the runs in progress; GET /api/history the past ones",
  });
}
