import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { apiFixture } from "./helpers/api.ts";

interface Row {
  id: number;
  set: string;
  status: string;
  backup: string | null;
  startedAt: string | null;
  warnings: number;
  warningList: { code: string; path: string; message: string }[] | null;
  error: string | null;
  errorCode: string | null;
  errorHint: string | null;
}

test("history through the API: newest first, filtered by set, result, period and limit; warnings and a failure's code and hint", async (t) => {
  const { app, server, service } = await apiFixture(t);
  await fs.writeFile(path.join(server.data, "a.db"), "a");
  const first = (await service.runNow("data").result).summary.name;
  // A FIFO is skipped with a warning (SKIPPED_SPECIAL), kept in the backup's manifest.
  execFileSync("mkfifo", [path.join(server.data, "pipe")]);
  const warned = (await service.runNow("data").result).summary.name;
  await fs.rm(path.join(server.data, "pipe"));
  // The source gone: the run fails with SOURCE_MISSING and its hint.
  await fs.rename(server.data, `${server.data}.away`);
  await assert.rejects(service.runNow("data").result, { code: "SOURCE_MISSING" });
  await fs.rename(`${server.data}.away`, server.data);

  const all = (await app.inject({ method: "GET", url: "/api/history" })).json() as Row[];
  assert.deepEqual(
    all.map((r) => [r.status, r.backup]),
    [
      ["failed", null],
      ["warnings", warned],
      ["ok", first],
    ],
  );
  const [failed, withWarnings, ok] = all as [Row, Row, Row];
  assert.equal(failed.errorCode, "SOURCE_MISSING");
  assert.ok(failed.errorHint);
  assert.match(failed.error ?? "", /Data/);
  assert.equal(withWarnings.warnings, 1);
  assert.deepEqual(
    withWarnings.warningList?.map((w) => [w.code, w.path]),
    [["SKIPPED_SPECIAL", "pipe"]],
  );
  assert.deepEqual(ok.warningList, []);

  const get = async (q: string) => {
    const r = await app.inject({ method: "GET", url: `/api/history?${q}` });
    assert.equal(r.statusCode, 200, r.body);
    return (r.json() as Row[]).map((x) => x.id);
  };
  assert.deepEqual(await get("result=failed"), [failed.id]);
  assert.deepEqual(await get("result=warnings&set=data"), [withWarnings.id]);
  assert.deepEqual(await get("limit=2"), [failed.id, withWarnings.id]);
  assert.deepEqual(await get(`since=${encodeURIComponent(withWarnings.startedAt as string)}`), [
    failed.id,
    withWarnings.id,
  ]);
  assert.deepEqual(await get(`until=${encodeURIComponent(withWarnings.startedAt as string)}`), [ok.id]);
  assert.deepEqual(await get("since=2100-01-01"), []);

  const unknownSet = await app.inject({ method: "GET", url: "/api/history?set=nope" });
  assert.equal(unknownSet.statusCode, 404);
  assert.equal((unknownSet.json() as { error: { code: string } }).error.code, "SET_UNKNOWN");
  for (const bad of ["result=great", "since=yesterday-ish", "limit=0"]) {
    const r = await app.inject({ method: "GET", url: `/api/history?${bad}` });
    assert.equal(r.statusCode, 400, bad);
    assert.equal((r.json() as { error: { code: string } }).error.code, "BAD_REQUEST");
  }
});

test("every route of this API is in /api/openapi.json with its response schema", async (t) => {
  const { app } = await apiFixture(t);
  const doc = (await app.inject({ method: "GET", url: "/api/openapi.json" })).json() as {
    paths: Record<string, Record<string, { responses: Record<string, { content?: unknown }> }>>;
  };
  const want: [string, string][] = [
    ["/api/status", "get"],
    ["/api/history", "get"],
    ["/api/runs", "get"],
    ["/api/runs/{id}", "get"],
    ["/api/runs/{id}", "delete"],
    ["/api/sets/{set}/backup", "post"],
    ["/api/events", "get"],
    ["/api/sets/{set}/backups", "get"],
    ["/api/sets/{set}/backups/{name}/files", "get"],
    ["/api/sets/{set}/restore", "post"],
    ["/api/sets/{set}/restore/plan", "post"],
    ["/api/sets/{set}/verify", "post"],
    ["/api/sets/{set}/prune-preview", "get"],
  ];
  for (const [p, method] of want) {
    const op = doc.paths[p]?.[method];
    assert.ok(op, `${method} ${p} in ${Object.keys(doc.paths).join(", ")}`);
    const ok = op.responses["200"] ?? op.responses["202"];
    assert.ok(ok?.content, `${method} ${p} describes its answer`);
  }
});
