import path from "node:path";
import { z } from "zod";
import { getSet } from "../../config/load.ts";
import { planRestore } from "../../ops/restore.ts";
import type { RunHandle } from "../../ops/runs.ts";
import { startRestore, startVerify } from "../../ops/start.ts";
import type { Api, ApiDeps } from "../api.ts";
import { openDest } from "../dest.ts";
import { apiErrorSchema } from "../errors.ts";
import { setParamsSchema } from "../schemas/common.ts";
import { runInfoBody, runInfoSchema } from "../schemas/runs.ts";

/*
 * Restore and verify as runs of the daemon's registry (ops/start.ts): the answer is the run
 * (202), its progress comes on /api/events and its outcome in the `run` ended event and
 * GET /api/runs/:id. A restore is checked first as the CLI would refuse it (TARGET_NOT_EMPTY
 * without `overwrite`, no such backup, a path the backup does not hold): then nothing starts.
 */

const restoreBody = z.object({
  /** Default: the newest backup of the set. */
  backup: z.string().min(1).optional(),
  /** `folder` (default) or an entry of `destinations:` to restore from. */
  dest: z.string().min(1).optional(),
  /** An absolute folder on the daemon's machine: new or empty, unless `overwrite`. */
  to: z.string().refine((p) => path.isAbsolute(p), "an absolute path on the daemon's machine"),
  /** Only these paths of the backup (each with what is under it); default: all. */
  paths: z.array(z.string().min(1)).max(10_000).optional(),
  /** Restore into a folder that is not empty: what the backup holds is replaced, the rest left alone. */
  overwrite: z.boolean().optional(),
});

export const planSchema = z.object({
  backup: z.string(),
  target: z.string(),
  existing: z.number().nullable(),
  replaces: z.number(),
  sample: z.array(z.string()),
  note: z.string(),
});

const errors = { 400: apiErrorSchema, 404: apiErrorSchema, 409: apiErrorSchema };

export function restoreRoutes(app: Api, deps: ApiDeps): void {
  const { service, clock } = deps;

  app.post(
    "/sets/:set/restore/plan",
    {
      schema: {
        summary:
          "What a restore would do to its target (created, filled, or which paths overwrite replaces): nothing is written",
        tags: ["restore"],
        params: setParamsSchema,
        body: restoreBody,
        response: { 200: planSchema, ...errors },
      },
    },
    async (req) => {
      const config = service.config;
      const set = getSet(config, req.params.set);
      const d = await openDest(config, set, req.body.dest);
      try {
        return await planRestore({ set, backup: req.body.backup }, { ...req.body, destination: d.dest });
      } finally {
        await d.close();
      }
    },
  );

  app.post(
    "/sets/:set/restore",
    {
      schema: {
        summary:
          "Restore a backup (its chain) into a folder, as a run; every file is checked against its sha256",
        tags: ["restore"],
        params: setParamsSchema,
        body: restoreBody,
        response: { 202: runInfoSchema.extend({ plan: planSchema }), ...errors },
      },
    },
    async (req, reply) => {
      const config = service.config;
      const set = getSet(config, req.params.set);
      const b = req.body;
      const d = await openDest(config, set, b.dest);
      let run: RunHandle<unknown>;
      let plan: Awaited<ReturnType<typeof planRestore>>;
      try {
        plan = await planRestore({ set, backup: b.backup }, { ...b, destination: d.dest });
        // The backup the plan found, so that a backup made meanwhile does not change what is restored.
        run = startRestore(
          service.runs,
          { clock },
          { set, backup: plan.backup },
          { to: b.to, overwrite: b.overwrite, paths: b.paths, destination: d.dest },
        );
      } catch (e) {
        await d.close();
        throw e;
      }
      void run.result.then(d.close, d.close);
      return reply.status(202).send({ ...runInfoBody(run.info), plan });
    },
  );

  app.post(
    "/sets/:set/verify",
    {
      schema: {
        summary: "Verify a set's backups (or one backup's chain) as a run: every file re-read and re-hashed",
        tags: ["restore"],
        params: setParamsSchema,
        body: z
          .object({ backup: z.string().min(1).optional(), dest: z.string().min(1).optional() })
          .nullish(),
        response: { 202: runInfoSchema, ...errors },
      },
    },
    async (req, reply) => {
      const config = service.config;
      const set = getSet(config, req.params.set);
      const d = await openDest(config, set, req.body?.dest);
      const run = startVerify(
        service.runs,
        { clock },
        { set, backup: req.body?.backup },
        { destination: d.dest },
      );
      void run.result.then(d.close, d.close);
      return reply.status(202).send(runInfoBody(run.info));
    },
  );
}
