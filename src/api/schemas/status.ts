import { z } from "zod";
import { backupModeSchema, runStatusSchema } from "./common.ts";

/** ops/status.ts Status: the daemon, and per set its schedule, last run, backups and copies. */
/** A drill as status shows it (src/ops/drill-status.ts DrillSeen). */
const drillSeenSchema = z
  .object({
    at: z.string(),
    backup: z.string().nullable(),
    pick: z.enum(["newest", "older", "chosen"]),
    /** The restore's time in milliseconds: the set's real recovery time from that place. */
    restoreMs: z.number().nullable(),
    ok: z.boolean(),
    error: z.string().nullable(),
    errorCode: z.string().nullable(),
    errorHint: z.string().nullable(),
  })
  .nullable();

export const statusSchema = z.object({
  daemon: z.object({
    running: z.boolean(),
    pid: z.number().nullable(),
    host: z.string().nullable(),
    since: z.string().nullable(),
  }),
  sets: z.array(
    z.object({
      set: z.string(),
      automatic: z.boolean(),
      schedule: z.object({
        frequency: z.string(),
        day: z.union([z.string(), z.number()]).nullable(),
        time: z.string(),
        timezone: z.string(),
      }),
      nextRun: z.string().nullable(),
      mode: backupModeSchema,
      chain: z
        .object({
          length: z.number(),
          fullEvery: z.number(),
          nextFullIn: z.number(),
          nextFullAt: z.string().nullable(),
        })
        .nullable(),
      lastRun: z
        .object({
          status: runStatusSchema,
          trigger: z.string(),
          planned: z.string().nullable(),
          startedAt: z.string().nullable(),
          finishedAt: z.string().nullable(),
          backup: z.string().nullable(),
          error: z.string().nullable(),
          errorCode: z.string().nullable(),
          errorHint: z.string().nullable(),
        })
        .nullable(),
      backups: z.object({
        count: z.number(),
        storedBytes: z.number(),
        diskBytes: z.number(),
        newest: z.string().nullable(),
        broken: z.number(),
        error: z.string().optional(),
        errorCode: z.string().optional(),
        errorHint: z.string().optional(),
      }),
      copies: z.array(
        z.object({
          destination: z.string(),
          where: z.string(),
          seen: z.enum(["destination", "catalog"]),
          newest: z.string().nullable(),
          count: z.number().nullable(),
          behind: z.number().nullable(),
          lastCopy: z
            .object({
              at: z.string(),
              ok: z.boolean(),
              copied: z.number(),
              code: z.string().optional(),
              message: z.string().optional(),
              hint: z.string().optional(),
            })
            .nullable(),
          error: z.string().optional(),
          errorCode: z.string().optional(),
          errorHint: z.string().optional(),
        }),
      ),
      /** Restore drills (issue 14): null when the set has none and was never drilled. */
      drills: z
        .object({
          scheduled: z.boolean(),
          nextRun: z.string().nullable(),
          places: z.array(
            z.object({
              destination: z.string(),
              /** "Last proven restorable": the newest drill that passed every check. */
              lastProven: drillSeenSchema,
              lastDrill: drillSeenSchema,
            }),
          ),
        })
        .nullable()
        .optional(),
    }),
  ),
});
