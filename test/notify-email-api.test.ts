import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { test } from "node:test";
import { apiFixture } from "./helpers/api.ts";

// Issue 14 item 2: a set's SMTP password never reaches the API; sent back as received, it stays.

test("a set's notify.email.password is a mask in GET /api/settings, and a PUT with the mask keeps it", async (t) => {
  const f = await apiFixture(t);
  const text = `server:
  root: srv
  timezone: UTC
  web: { enabled: false }
sets:
  data:
    letter: D
    source: Data
    frequency: now
    notify:
      email: { host: smtp.example.com, user: u, password: plain-smtp-value, from: a@example.com, to: [b@example.com] }
`;
  await fs.writeFile(f.server.config, text);
  assert.ok(f.service.reload("test"));
  const r = await f.app.inject({ method: "GET", url: "/api/settings" });
  assert.equal(r.statusCode, 200, r.body);
  assert.doesNotMatch(r.body, /plain-smtp-value/);
  const s = r.json() as {
    hash: string;
    sets: Record<string, { notify?: { email?: { password?: unknown } } }>;
  };
  assert.deepEqual(s.sets.data?.notify?.email?.password, { secret: null, set: true });
  const keep = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/data",
    payload: { hash: s.hash, settings: { ...s.sets.data, time: "05:00" } },
  });
  assert.equal(keep.statusCode, 200, keep.body);
  assert.doesNotMatch(keep.body, /plain-smtp-value/);
  assert.match(await fs.readFile(f.server.config, "utf8"), /password: plain-smtp-value/);
});
