import { z } from "zod";
import type { BackupNowResult } from "../../ops/backup-now.ts";
import type { RestoreOpResult } from "../../ops/restore.ts";
import type { EndedRun, RunInfo, RunOutcome } from "../../ops/runs.ts";
import type { VerifyResult } from "../../verify/verify.ts";
import {
  backupModeSchema,
  backupTypeSchema,
  progressSchema,
  warningSchema,
  wordedErrorSchema,
} from "./common.ts";

/** ops/runs.ts RunInfo, with its latest progress (null before the first). */
export const runInfoSchema = z.object({
  id: z.string(),
  kind: z.enum(["backup", "restore", "verify", "prune", "copy", "drill"]),
  set: z.string().nullable(),
  trigger: z.enum(["manual", "schedule", "api"]),
  startedAt: z.string(),
  progress: progressSchema.nullable(),
});
export type RunInfoBody = z.infer<typeof runInfoSchema>;

export function runInfoBody(info: RunInfo): RunInfoBody {
  return {
    id: info.id,
    kind: info.kind,
    set: info.set ?? null,
    trigger: info.trigger,
    startedAt: info.startedAt,
    progress: info.last?.kind === "progress" ? info.last.progress : null,
  };
}

/** A backup's result: the backup made (BackupSummary), its warnings, what the keep policy deleted. */
const backupResultSchema = z.object({
  kind: z.literal("backup"),
  backup: z.object({
    name: z.string(),
    path: z.string(),
    type: backupTypeSchema,
    mode: backupModeSchema,
    parent: z.string().nullable(),
    files: z.number(),
    bytes: z.number(),
    storedFiles: z.number(),
    storedBytes: z.number(),
    startedAt: z.string(),
    finishedAt: z.string(),
  }),
  warnings: z.array(warningSchema),
  pruned: z.array(z.string()),
});

/** A restore's result: every file written was checked against its sha256 (a mismatch fails the run). */
const restoreResultSchema = z.object({
  kind: z.literal("restore"),
  backup: z.string(),
  chain: z.array(z.string()),
  target: z.string(),
  files: z.number(),
  dirs: z.number(),
  symlinks: z.number(),
  bytes: z.number(),
  /** Files whose content was checked against the manifest's sha256: all of them. */
  verified: z.number(),
});

/** A verify's result: damage is the result (`problems`, each naming the backup and file), not an error. */
const verifyResultSchema = z.object({
  kind: z.literal("verify"),
  ok: z.boolean(),
  backups: z.number(),
  files: z.number(),
  bytes: z.number(),
  problems: z.array(
    z.object({
      backup: z.string(),
      path: z.string().optional(),
      problem: z.string(),
      /** RESTORE_MISMATCH, CHAIN_BROKEN, UNSAFE_PATH where the damage is one of those. */
      code: z.string().optional(),
    }),
  ),
});

const otherResultSchema = z.object({ kind: z.enum(["prune", "copy", "drill"]) });

export const runResultSchema = z.union([
  backupResultSchema,
  restoreResultSchema,
  verifyResultSchema,
  otherResultSchema,
]);

/** One run, running or ended (`GET /api/runs/:id`, the `run` event): once ended, its result or error. */
export const runStateSchema = z.object({
  run: runInfoSchema,
  state: z.enum(["running", "ended"]),
  endedAt: z.string().nullable(),
  ok: z.boolean().nullable(),
  result: runResultSchema.nullable(),
  error: wordedErrorSchema.nullable(),
});
export type RunStateBody = z.infer<typeof runStateSchema>;

export function runningBody(info: RunInfo): RunStateBody {
  return { run: runInfoBody(info), state: "running", endedAt: null, ok: null, result: null, error: null };
}

export function endedBody(ended: EndedRun): RunStateBody {
  const { info, outcome } = ended;
  return {
    run: runInfoBody(info),
    state: "ended",
    endedAt: outcome.endedAt,
    ok: outcome.ok,
    result: outcome.ok ? resultBody(info, outcome) : null,
    error: outcome.ok ? null : outcome.error,
  };
}

function resultBody(
  info: RunInfo,
  outcome: Extract<RunOutcome, { ok: true }>,
): z.infer<typeof runResultSchema> {
  switch (info.kind) {
    case "backup": {
      const r = outcome.result as BackupNowResult;
      const s = r.summary;
      return {
        kind: "backup",
        backup: {
          name: s.name,
          path: s.path,
          type: s.type,
          mode: s.mode,
          parent: s.parent,
          files: s.files,
          bytes: s.bytes,
          storedFiles: s.storedFiles,
          storedBytes: s.storedBytes,
          startedAt: s.startedAt,
          finishedAt: s.finishedAt,
        },
        warnings: [...r.warnings, ...(r.copyWarnings ?? [])],
        pruned: r.pruned?.removed ?? [],
      };
    }
    case "restore": {
      const r = outcome.result as RestoreOpResult;
      return {
        kind: "restore",
        backup: r.backup,
        chain: r.chain,
        target: r.target,
        files: r.files,
        dirs: r.dirs,
        symlinks: r.symlinks,
        bytes: r.bytes,
        verified: r.files,
      };
    }
    case "verify": {
      const r = outcome.result as VerifyResult;
      return {
        kind: "verify",
        ok: r.problems.length === 0,
        backups: r.backups,
        files: r.files,
        bytes: r.bytes,
        problems: r.problems.map((p) => ({
          backup: p.backup,
          ...(p.path ? { path: p.path } : {}),
          problem: p.problem,
          ...(p.code ? { code: p.code } : {}),
        })),
      };
    }
    default:
      return { kind: info.kind };
  }
}
