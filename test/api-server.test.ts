import assert from "node:assert/strict";
import { test } from "node:test";
import { WEB_ROOT, windowBuilt } from "../src/api/web.ts";
import { apiFixture } from "./helpers/api.ts";

test("the API answers status from the daemon and documents itself in /api/openapi.json", async (t) => {
  const { app } = await apiFixture(t);
  const st = await app.inject({ method: "GET", url: "/api/status" });
  assert.equal(st.statusCode, 200, st.body);
  const body = st.json() as { sets: { set: string }[] };
  assert.deepEqual(
    body.sets.map((s) => s.set),
    ["data"],
  );
  const doc = (await app.inject({ method: "GET", url: "/api/openapi.json" })).json() as {
    openapi: string;
    paths: Record<string, unknown>;
  };
  assert.match(doc.openapi, /^3\./);
  assert.ok(doc.paths["/api/status"], Object.keys(doc.paths).join(", "));
  const missing = await app.inject({ method: "GET", url: "/api/nothing-here" });
  assert.equal(missing.statusCode, 404);
  assert.equal((missing.json() as { error: { code: string } }).error.code, "NOT_FOUND");
});

test("the window's files are served at / and any route of the window gets its index.html", async (t) => {
  const { app } = await apiFixture(t, { deps: { webRoot: WEB_ROOT } });
  if (!(await windowBuilt())) return t.skip("the window is not built: npm run build:web");
  const index = await app.inject({ method: "GET", url: "/" });
  assert.equal(index.statusCode, 200);
  assert.match(index.body, /<div id="root">/);
  const deep = await app.inject({ method: "GET", url: "/history" });
  assert.equal(deep.statusCode, 200);
  assert.match(deep.body, /<div id="root">/);
  const api = await app.inject({ method: "GET", url: "/api/nope" });
  assert.equal(api.statusCode, 404);
});
