import { z } from "zod";
import { BACKUP_MODES, BACKUP_TYPES, RUN_STATUSES } from "../../core/types.ts";

/*
 * The shapes the routes share, each mirroring the ops type it is named after (src/core/types.ts,
 * src/ops/runs.ts): the routes validate and serialise with them, and /api/openapi.json shows them.
 */

export const backupTypeSchema = z.enum(BACKUP_TYPES);
export const backupModeSchema = z.enum(BACKUP_MODES);
export const runStatusSchema = z.enum(RUN_STATUSES);

/** An error as the CLI words it (a failed run's, a copy's): code, message, and the fix. */
export const wordedErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  hint: z.string().nullable(),
});

/** A warning as a manifest keeps it (StoredWarning): the code of a newer bsched is shown as is. */
export const warningSchema = z.object({ path: z.string(), code: z.string(), message: z.string() });

/** core/types.ts Progress: where a run is. */
export const progressSchema = z.object({
  phase: z.enum(["scan", "copy", "verify", "restore", "publish", "done"]),
  files: z.number(),
  bytes: z.number(),
  totalFiles: z.number(),
  totalBytes: z.number(),
  current: z.string().optional(),
  destination: z.string().optional(),
  /** Bytes per second since the phase began. */
  rate: z.number().optional(),
});

/** `?dest=NAME`: `folder` (the set's own backup folder, the default) or an entry of `destinations:`. */
export const destQuerySchema = z.object({ dest: z.string().min(1).optional() });

export const setParamsSchema = z.object({ set: z.string().min(1) });
