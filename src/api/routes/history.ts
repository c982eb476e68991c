import { z } from "zod";
import { getSet } from "../../config/load.ts";
import { history, runWarnings } from "../../ops/history.ts";
import type { Api, ApiDeps } from "../api.ts";
import { apiErrorSchema } from "../errors.ts";
import { runStatusSchema, warningSchema } from "../schemas/common.ts";

/*
 * `GET /api/history`: past runs from the daemon's catalog (ops/history.ts, as `bsched history`),
 * newest first, filtered by set, result and period; each failed run with its error's code and
 * hint, each run that warned with its warnings (from its backup's manifest).
 */

const isoInstant = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), "a date or ISO instant (2026-12-01 or 2026-12-01T04:00:00Z)")
  .transform((s) => new Date(s).toISOString());

export const historyQuerySchema = z.object({
  set: z.string().min(1).optional(),
  result: runStatusSchema.optional(),
  since: isoInstant.optional(),
  until: isoInstant.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});

export const historyRunSchema = z.object({
  id: z.number(),
  set: z.string(),
  planned: z.string().nullable(),
  trigger: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  status: runStatusSchema,
  files: z.number(),
  bytes: z.number(),
  backup: z.string().nullable(),
  slots: z.number(),
  /** How many warnings the run had. */
  warnings: z.number(),
  /** Those warnings (null: not readable here: its backup is on a remote folder, pruned, or unreadable). */
  warningList: z.array(warningSchema).nullable(),
  error: z.string().nullable(),
  errorCode: z.string().nullable(),
  errorHint: z.string().nullable(),
});

export function historyRoutes(app: Api, deps: ApiDeps): void {
  app.get(
    "/history",
    {
      schema: {
        summary: "Past runs, newest first, with warnings and each failure's code and hint",
        tags: ["history"],
        querystring: historyQuerySchema,
        response: { 200: z.array(historyRunSchema), 400: apiErrorSchema, 404: apiErrorSchema },
      },
    },
    async (req) => {
      const { service, clock } = deps;
      const q = req.query;
      const config = service.config;
      if (q.set) getSet(config, q.set);
      const runs = history(
        { config, clock, catalog: service.catalog },
        { set: q.set, status: q.result, since: q.since, until: q.until, limit: q.limit },
      );
      const warnings = await runWarnings(config, runs);
      return runs.map((r) => ({
        id: r.id,
        set: r.set,
        planned: r.planned,
        trigger: r.trigger,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        status: r.status,
        files: r.files,
        bytes: r.bytes,
        backup: r.backup,
        slots: r.slots,
        warnings: r.warnings,
        warningList: r.warnings === 0 ? [] : (warnings.get(r.id) ?? null),
        error: r.error,
        errorCode: r.errorCode,
        errorHint: r.errorHint,
      }));
    },
  );
}
