import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { test } from "node:test";
import type { z } from "zod";
import type { backupsSchema, filesSchema, prunePreviewSchema } from "../src/api/routes/backups.ts";
import type { historyRunSchema } from "../src/api/routes/history.ts";
import type { planSchema } from "../src/api/routes/restore.ts";
import type { nextAnswerSchema } from "../src/api/routes/settings-schemas.ts";
import type { runInfoSchema, runStateSchema } from "../src/api/schemas/runs.ts";
import type { statusSchema } from "../src/api/schemas/status.ts";
import type * as Web from "../web/src/api.ts";
import { securedApi } from "./helpers/auth.ts";

/*
 * The window's view of the API (web/src/api.ts, written by hand for the browser) against the
 * server's own zod schemas: each answer the server can give must be a value the window's type
 * accepts (checked by `tsc`, which CI runs), and every route the window calls must be in the
 * OpenAPI document with that method (checked below). A renamed field or route fails here, not in
 * a browser.
 */
type Out<S extends z.ZodType> = z.output<S>;
/** What the server can answer, by its schemas; assigned below to what the window reads (a compile error names the field). */
declare const server: {
  status: Out<typeof statusSchema>;
  history: Out<typeof historyRunSchema>;
  runInfo: Out<typeof runInfoSchema>;
  runState: Out<typeof runStateSchema>;
  plan: Out<typeof planSchema>;
  backups: Out<typeof backupsSchema>;
  files: Out<typeof filesSchema>;
  prune: Out<typeof prunePreviewSchema>;
  next: Out<typeof nextAnswerSchema>;
};
export const checked: {
  status: Web.Status;
  history: Web.RunRecord;
  runInfo: Web.RunInfo;
  runState: Web.WireRunState;
  plan: Web.RestorePlan;
  backups: { backups: Web.Backup[] };
  files: Web.WireFiles;
  prune: Web.WirePrunePreview;
  next: { runs: Web.PlannedRun[] };
} = typeof server === "undefined" ? (undefined as never) : server;

test("every route the window calls is in the OpenAPI document, with its method", async (t) => {
  // The real authentication: its routes (login, session, setup) are the window's too.
  const { app } = await securedApi(t);
  await app.ready();
  const doc = (app as unknown as { swagger(): { paths: Record<string, Record<string, unknown>> } }).swagger();
  const source = await fs.readFile(new URL("../web/src/api.ts", import.meta.url), "utf8");
  // api.get<T>("/api/x"), api.post(`/api/sets/${enc(set)}/backup`, …), …
  const calls = [...source.matchAll(/api\.(get|post|put|del)(?:<[^>]*>)?\(\s*["`](\/api\/[^"`]*)["`]/g)].map(
    ([, method, url]) => ({
      method: method === "del" ? "delete" : (method as string),
      // A `${enc(x)}` segment is a route parameter; a `${query(…)}` tail is the query string.
      path: (url as string).replace(/\$\{query\(.*\)\}$/, "").replace(/\$\{enc\((\w+)\)\}/g, "{p}"),
    }),
  );
  assert.ok(calls.length >= 20, `found ${calls.length} calls in web/src/api.ts`);
  const documented = Object.entries(doc.paths).flatMap(([p, methods]) =>
    Object.keys(methods).map((m) => `${m} ${p.replace(/\{[^}]+\}/g, "{p}")}`),
  );
  // Routes fastify-swagger leaves out on purpose (hidden): the event stream and the document itself.
  const hidden = ["get /api/events", "get /api/openapi.json"];
  const missing = calls
    .map((c) => `${c.method} ${c.path}`)
    .filter((c) => !documented.includes(c) && !hidden.includes(c));
  assert.deepEqual(missing, [], `documented: ${documented.join(", ")}`);
});
