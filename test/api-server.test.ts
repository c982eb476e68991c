import assert from "node:assert/strict";
import { test } from "node:test";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
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

test("the window's code goes brotli- or gzip-compressed to a browser that asks, plain to one that does not", async (t) => {
  const { app } = await apiFixture(t, { deps: { webRoot: WEB_ROOT } });
  if (!(await windowBuilt())) return t.skip("the window is not built: npm run build:web");
  // What Chromium asks for: the index must come (compressed) too, not only the assets.
  const browser = { "accept-encoding": "gzip, deflate, br, zstd" };
  const packed = await app.inject({ method: "GET", url: "/", headers: browser });
  assert.equal(packed.statusCode, 200, packed.body);
  assert.equal(packed.headers["content-encoding"], "br");
  assert.match(brotliDecompressSync(packed.rawPayload).toString(), /<div id="root">/);
  const index = await app.inject({ method: "GET", url: "/" });
  const script = /src="(\/assets\/[^"]+\.js)"/.exec(index.body)?.[1];
  assert.ok(script, index.body);
  const plain = await app.inject({ method: "GET", url: script });
  assert.equal(plain.statusCode, 200);
  assert.equal(plain.headers["content-encoding"], undefined);
  for (const [asked, got, unzip] of [
    ["br, gzip", "br", brotliDecompressSync],
    ["gzip", "gzip", gunzipSync],
  ] as const) {
    const r: { statusCode: number; headers: Record<string, unknown>; rawPayload: Buffer } = await app.inject({
      method: "GET",
      url: script,
      headers: { "accept-encoding": asked },
    });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers["content-encoding"], got);
    assert.ok(r.rawPayload.length < plain.rawPayload.length / 2, `${got}: ${r.rawPayload.length} bytes`);
    assert.deepEqual(unzip(r.rawPayload), plain.rawPayload);
  }
  // An API answer is compressed per request, and still parses.
  const doc = await app.inject({
    method: "GET",
    url: "/api/openapi.json",
    headers: { "accept-encoding": "gzip" },
  });
  assert.equal(doc.headers["content-encoding"], "gzip");
  assert.match(JSON.parse(gunzipSync(doc.rawPayload).toString()).openapi as string, /^3\./);
});
