import { z } from "zod";
import { BschedError } from "../core/errors.ts";

/**
 * Every error the API answers with: the same code, message and hint as the CLI prints, and for a
 * bad value the fields it concerns (`path` as in the config: ["sets","archive","time"]), so the
 * window shows each message beside its field.
 */
export const apiErrorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    hint: z.string().nullable(),
    fields: z
      .array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() }))
      .optional(),
  }),
});
export type ApiError = z.infer<typeof apiErrorSchema>;

/** The HTTP status a BschedError answers with: bad input 400, missing 404 (a set too), conflicts 409 (a restore target not empty too), busy 423, else 500. */
export function statusOf(code: string): number {
  if (code === "CONFIG_INVALID" || code === "USAGE" || code === "BAD_REQUEST") return 400;
  if (code === "UNAUTHENTICATED") return 401;
  if (code === "FORBIDDEN" || code === "CSRF") return 403;
  if (code.endsWith("_NOT_FOUND") || code === "NOT_FOUND" || code === "BACKUP_MISSING") return 404;
  if (code === "SET_UNKNOWN") return 404;
  if (code === "CONFLICT" || code === "CONFIG_CHANGED" || code === "TARGET_NOT_EMPTY") return 409;
  if (code === "LOCKED") return 423;
  if (code === "RATE_LIMITED") return 429;
  return 500;
}

export function toApiError(e: unknown): { status: number; body: ApiError } {
  if (e instanceof BschedError) {
    const fields = e.fields;
    return {
      status: statusOf(e.code),
      body: {
        error: { code: e.code, message: e.message, hint: e.hint ?? null, ...(fields ? { fields } : {}) },
      },
    };
  }
  const v = e as { validation?: unknown; statusCode?: number; message?: string; code?: string };
  if (v?.validation !== undefined || v?.statusCode === 400)
    return {
      status: 400,
      body: { error: { code: "BAD_REQUEST", message: v.message ?? "bad request", hint: null } },
    };
  if (typeof v?.statusCode === "number" && v.statusCode < 500)
    return {
      status: v.statusCode,
      body: { error: { code: v.code ?? "HTTP_ERROR", message: v.message ?? "error", hint: null } },
    };
  return {
    status: 500,
    body: { error: { code: "INTERNAL", message: (e as Error)?.message ?? String(e), hint: null } },
  };
}
