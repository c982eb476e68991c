import { z } from "zod";
import { getSet } from "../../config/load.ts";
import { browseBackup } from "../../ops/browse.ts";
import { list } from "../../ops/list.ts";
import { prunePreview } from "../../ops/prune.ts";
import type { Api, ApiDeps } from "../api.ts";
import { withDest } from "../dest.ts";
import { apiErrorSchema } from "../errors.ts";
import {
  backupModeSchema,
  backupTypeSchema,
  destQuerySchema,
  setParamsSchema,
  warningSchema,
} from "../schemas/common.ts";

/*
 * What is stored: a set's backups on its folder or a destination (ops/list.ts, as `bsched list
 * [--dest]`), one folder level of a backup's files from its manifest (ops/browse.ts), and what the
 * keep policy would delete and why the rest is kept (ops/prune.ts prunePreview).
 */

const listedSchema = z.object({
  name: z.string(),
  path: z.string(),
  set: z.string(),
  type: backupTypeSchema.nullable(),
  mode: backupModeSchema.nullable(),
  parent: z.string().nullable(),
  files: z.number().nullable(),
  bytes: z.number().nullable(),
  storedFiles: z.number().nullable(),
  storedBytes: z.number().nullable(),
  diskBytes: z.number().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  warnings: z.array(warningSchema),
  /** ok: restorable; broken: not (`reason` says why). */
  state: z.enum(["ok", "broken"]),
  reason: z.string().nullable(),
  /** On another destination: whether the set's own folder holds it too (null: unknown). */
  inFolder: z.boolean().nullable().optional(),
});

export const backupsSchema = z.object({
  set: z.string(),
  /** `folder` (the set's own) or the destination's name. */
  dest: z.string(),
  /** Oldest first. */
  backups: z.array(listedSchema),
  broken: z.number(),
});

export const filesSchema = z.object({
  backup: z.string(),
  path: z.string(),
  entries: z.array(
    z.object({
      name: z.string(),
      path: z.string(),
      kind: z.enum(["file", "dir", "symlink"]),
      size: z.number().nullable(),
      mtime: z.string(),
      mode: z.number(),
      target: z.string().nullable(),
      from: z.string().nullable(),
      entries: z.number().nullable(),
    }),
  ),
});

const keepPolicySchema = z.object({
  last: z.number().optional(),
  daily: z.number().optional(),
  weekly: z.number().optional(),
  monthly: z.number().optional(),
});

export const prunePreviewSchema = z.object({
  set: z.string(),
  dest: z.string(),
  policy: keepPolicySchema.nullable(),
  keep: z.array(z.object({ name: z.string(), reasons: z.array(z.string()) })),
  remove: z.array(z.object({ name: z.string(), why: z.string(), diskBytes: z.number() })),
  broken: z.array(z.object({ name: z.string(), reason: z.string() })),
});

const errors = { 400: apiErrorSchema, 404: apiErrorSchema };

export function backupsRoutes(app: Api, deps: ApiDeps): void {
  const { service } = deps;

  app.get(
    "/sets/:set/backups",
    {
      schema: {
        summary:
          "A set's backups on its folder or a destination (?dest=NAME), oldest first, each restorable or not",
        tags: ["backups"],
        params: setParamsSchema,
        querystring: destQuerySchema,
        response: { 200: backupsSchema, ...errors },
      },
    },
    async (req) => {
      const config = service.config;
      const set = getSet(config, req.params.set);
      const r = await withDest(config, set, req.query.dest, (dest) =>
        list({ config }, set, { destination: dest, compareWithFolder: dest !== undefined }),
      );
      return { set: set.id, dest: req.query.dest ?? "folder", backups: r.backups, broken: r.broken };
    },
  );

  app.get(
    "/sets/:set/backups/:name/files",
    {
      schema: {
        summary: "One folder level of a backup's files (?path=a/b), from its manifest: no file content",
        tags: ["backups"],
        params: setParamsSchema.extend({ name: z.string().min(1) }),
        querystring: destQuerySchema.extend({ path: z.string().optional() }),
        response: { 200: filesSchema, ...errors },
      },
    },
    async (req) => {
      const config = service.config;
      const set = getSet(config, req.params.set);
      return withDest(config, set, req.query.dest, (dest) =>
        browseBackup({}, set, req.params.name, { path: req.query.path, destination: dest }),
      );
    },
  );

  app.get(
    "/sets/:set/prune-preview",
    {
      schema: {
        summary: "What the keep policy would delete now and why, and why each other backup is kept",
        tags: ["backups"],
        params: setParamsSchema,
        querystring: destQuerySchema,
        response: { 200: prunePreviewSchema, ...errors },
      },
    },
    async (req) => {
      const config = service.config;
      const own = getSet(config, req.params.set);
      const r = await withDest(config, own, req.query.dest, (dest, set) =>
        prunePreview({ config }, set, { destination: dest }),
      );
      return { ...r, dest: req.query.dest ?? "folder" };
    },
  );
}
