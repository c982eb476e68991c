import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { ApiError } from "../src/api/errors.ts";
import { defaultConfigText } from "../src/config/init.ts";
import type { Settings } from "./helpers/api.ts";
import { type ApiFixture, apiFixture } from "./helpers/api.ts";

/*
 * The settings routes of the window (docs/design.md "Settings and system parameters") through
 * app.inject, on a daemon service whose config is what `bsched init` writes (with its comments).
 */

/** The fixture with the four standard sets as `bsched init` writes them (comments and all), reloaded. */
async function standard(t: Parameters<typeof apiFixture>[0]): Promise<ApiFixture & { text: string }> {
  const f = await apiFixture(t);
  for (const dir of ["Data", "Archive", "Time", "Video"])
    await fs.mkdir(path.join(f.server.root, dir), { recursive: true });
  const text = defaultConfigText(f.server.root, "Europe/Paris");
  await fs.writeFile(f.server.config, text);
  assert.ok(f.service.reload("test"), f.log.lines.map((l) => l.msg).join("\n"));
  return { ...f, text };
}

async function getSettings(f: ApiFixture): Promise<Settings> {
  const r = await f.app.inject({ method: "GET", url: "/api/settings" });
  assert.equal(r.statusCode, 200, r.body);
  return r.json() as Settings;
}

/** The seed's must-show change of the Archive tab. */
const ARCHIVE_CHANGE = {
  frequency: "monthly",
  day: "last",
  time: "23:30",
  type: "compressed",
  mode: "incremental",
};

test("GET /api/settings: every set's settings as the config gives them, the system parameters, the hash", async (t) => {
  const f = await standard(t);
  const s = await getSettings(f);
  assert.match(s.hash, /^[0-9a-f]{64}$/);
  assert.deepEqual(Object.keys(s.sets), ["data", "archive", "inout", "video"]);
  assert.deepEqual(s.sets.archive, {
    letter: "A",
    source: "Archive",
    automatic: true,
    folder: "default",
    type: "separate",
    mode: "full",
    frequency: "weekly",
    day: "sunday",
    time: "04:00",
    compression: "zstd",
    catchUp: "once",
    copies: [],
  });
  assert.deepEqual(s.system, {
    serviceLogin: null,
    timezone: "Europe/Paris",
    timezoneInEffect: "Europe/Paris",
    concurrency: 1,
    destinations: {},
  });
});

test("the Archive tab: monthly, last day, 23:30, compressed incremental → exactly those keys written, comments kept, the daemon reloaded, and `bsched next archive` agrees", async (t) => {
  const f = await standard(t);
  const before = await getSettings(f);
  const settings = { ...before.sets.archive, ...ARCHIVE_CHANGE };
  const from = "2026-12-02T08:00:00Z";

  const shown = await f.app.inject({
    method: "POST",
    url: "/api/settings/next",
    payload: { set: "archive", settings, from },
  });
  assert.equal(shown.statusCode, 200, shown.body);
  const next = shown.json() as { timezone: string; runs: { at: string; local: string; mode: string }[] };
  assert.equal(next.timezone, "Europe/Paris");
  assert.deepEqual(
    next.runs.map((r) => r.at),
    ["2026-12-31T22:30:00.000Z", "2027-01-31T22:30:00.000Z", "2027-02-28T22:30:00.000Z"],
  );
  assert.equal(next.runs[0]?.local, "2026-12-31 23:30 GMT+1");
  assert.equal(await fs.readFile(f.server.config, "utf8"), f.text, "next writes nothing");

  const put = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/archive",
    payload: { hash: before.hash, settings },
  });
  assert.equal(put.statusCode, 200, put.body);
  const saved = put.json() as { hash: string; changed: boolean };
  assert.equal(saved.changed, true);

  const text = await fs.readFile(f.server.config, "utf8");
  const doc = parseYaml(text) as { sets: Record<string, Record<string, unknown>> };
  assert.deepEqual(doc.sets.archive, {
    letter: "A",
    source: "Archive",
    automatic: true,
    folder: "default",
    ...ARCHIVE_CHANGE,
  });
  // Only the archive set's changed values differ, line for line; every comment is where it was.
  const was = f.text.split("\n");
  const now = text.split("\n");
  assert.equal(now.length, was.length);
  const changed = now.flatMap((l, i) => (l === was[i] ? [] : [[was[i], l]]));
  assert.deepEqual(
    changed.map(([, l]) => l?.trim().replace(/\s+#.*/, "")),
    ["type: compressed", "mode: incremental", "frequency: monthly", "day: last", 'time: "23:30"'],
  );
  for (const [old, l] of changed)
    assert.equal(l?.slice(l.indexOf("#")), old?.slice(old.indexOf("#")), "the line's comment stays");
  for (const set of ["data", "inout", "video"])
    assert.deepEqual(doc.sets[set], (parseYaml(f.text) as typeof doc).sets[set]);

  const after = await getSettings(f);
  assert.equal(after.hash, saved.hash);
  assert.deepEqual(after.sets.archive, settings);
  const loaded = f.service.config.sets.get("archive");
  assert.equal(loaded?.frequency, "monthly", "the daemon reloaded");
  assert.equal(loaded?.day, "last");

  const cli = await f.server.cli(["next", "archive", "--json", "--count", "3", "--from", from]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.deepEqual(
    JSON.parse(cli.stdout),
    next.runs.map(({ at, mode }) => ({ at, mode })),
  );

  // Sent back as it is: nothing to write.
  const again = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/archive",
    payload: { hash: saved.hash, settings: after.sets.archive },
  });
  assert.equal(again.statusCode, 200, again.body);
  assert.equal((again.json() as { changed: boolean }).changed, false);
  assert.equal(await fs.readFile(f.server.config, "utf8"), text);
});

test("a bad time (25:00) is a field error with the CLI's message, and nothing is written", async (t) => {
  const f = await standard(t);
  const s = await getSettings(f);
  const settings = { ...s.sets.archive, time: "25:00" };
  for (const [method, url, payload] of [
    ["PUT", "/api/settings/sets/archive", { hash: s.hash, settings }],
    ["POST", "/api/settings/next", { set: "archive", settings }],
  ] as const) {
    const r = await f.app.inject({ method, url, payload });
    assert.equal(r.statusCode, 400, r.body);
    const e = (r.json() as ApiError).error;
    assert.equal(e.code, "CONFIG_INVALID");
    assert.equal(e.fields?.length, 1, JSON.stringify(e.fields));
    assert.deepEqual(e.fields?.[0]?.path, ["sets", "archive", "time"]);
    assert.match(e.fields?.[0]?.message ?? "", /got "25:00"; allowed: a 24-hour time "HH:MM"/);
    assert.match(e.hint ?? "", /nothing was written/);
  }
  assert.equal(await fs.readFile(f.server.config, "utf8"), f.text);
  // The CLI says the same of the same key.
  const cli = await f.server.cli(["config", "set", "sets.archive.time", '"25:00"']);
  assert.equal(cli.code, 2);
  const fieldMessage = 'got "25:00"; allowed: a 24-hour time "HH:MM" from "00:00" to "23:59"';
  assert.ok(cli.stderr.includes(`sets.archive.time: ${fieldMessage}`), cli.stderr);
  assert.equal(await fs.readFile(f.server.config, "utf8"), f.text);
});

test("several bad values: one field each; an unknown key is named", async (t) => {
  const f = await standard(t);
  const s = await getSettings(f);
  const r = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/data",
    payload: {
      hash: s.hash,
      settings: { ...s.sets.data, frequency: "weekly", day: "someday", mode: "both", colour: "red" },
    },
  });
  assert.equal(r.statusCode, 400, r.body);
  const paths = ((r.json() as ApiError).error.fields ?? []).map((x) => x.path.join("."));
  assert.deepEqual(paths.sort(), ["sets.data.colour", "sets.data.mode"].sort(), paths.join(", "));
  // The day's check runs once the schema's shapes pass: alone it is its own field error.
  const day = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/data",
    payload: { hash: s.hash, settings: { ...s.sets.data, day: "someday" } },
  });
  assert.deepEqual(
    ((day.json() as ApiError).error.fields ?? []).map((x) => x.path),
    [["sets", "data", "day"]],
  );
  assert.equal(await fs.readFile(f.server.config, "utf8"), f.text);
});

test("a change based on an old hash (the file edited meanwhile) is 409 CONFIG_CHANGED and the other edit stays", async (t) => {
  const f = await standard(t);
  const s = await getSettings(f);
  const edited = `${f.text}# an edit made with a text editor meanwhile\n`;
  await fs.writeFile(f.server.config, edited);
  const r = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/archive",
    payload: { hash: s.hash, settings: { ...s.sets.archive, ...ARCHIVE_CHANGE } },
  });
  assert.equal(r.statusCode, 409, r.body);
  const e = (r.json() as ApiError).error;
  assert.equal(e.code, "CONFIG_CHANGED");
  assert.match(e.hint ?? "", /reload/);
  assert.equal(await fs.readFile(f.server.config, "utf8"), edited);
});

test("a new set (a custom tab) is added; leaving a key out removes it; null is none", async (t) => {
  const f = await standard(t);
  await fs.mkdir(path.join(f.server.root, "Logs"));
  const s = await getSettings(f);
  const logs = {
    letter: "L",
    source: "Logs",
    frequency: "daily",
    time: "02:15",
    keep: { last: 5 },
    every: null,
  };
  const add = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/logs",
    payload: { hash: s.hash, settings: logs },
  });
  assert.equal(add.statusCode, 200, add.body);
  const text = await fs.readFile(f.server.config, "utf8");
  assert.ok(text.startsWith(f.text), "the rest of the file as it was");
  assert.deepEqual((parseYaml(text) as Settings).sets.logs, {
    letter: "L",
    source: "Logs",
    frequency: "daily",
    time: "02:15",
    keep: { last: 5 },
  });
  assert.ok(f.service.config.sets.has("logs"), "the daemon reloaded");

  const s2 = await getSettings(f);
  const { keep: _keep, ...withoutKeep } = s2.sets.logs as Record<string, unknown>;
  const r = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/logs",
    payload: { hash: s2.hash, settings: withoutKeep },
  });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(
    (parseYaml(await fs.readFile(f.server.config, "utf8")) as Settings).sets.logs?.keep,
    undefined,
  );
});

test("the settings routes are in the OpenAPI document", async (t) => {
  const f = await apiFixture(t);
  const doc = (await f.app.inject({ method: "GET", url: "/api/openapi.json" })).json() as {
    paths: Record<string, Record<string, unknown>>;
  };
  for (const [p, m] of [
    ["/api/settings", "get"],
    ["/api/settings/next", "post"],
    ["/api/settings/sets/{set}", "put"],
    ["/api/settings/system", "put"],
    ["/api/settings/destinations/{name}", "put"],
    ["/api/settings/destinations/{name}", "delete"],
    ["/api/destinations/test", "post"],
  ] as const)
    assert.ok(doc.paths[p]?.[m], `${m} ${p}`);
});

test("a set with block maps (keep, hooks, notify): sent back unchanged writes nothing; one value changed is that line only", async (t) => {
  const f = await apiFixture(t);
  const text = `server:
  root: srv
  timezone: UTC
sets:
  data:
    letter: D
    source: Data
    frequency: daily        # every night
    time: "01:00"
    keep:
      last: 8               # a week and a day
      monthly: 6
    hooks:
      before: "sync"
    notify:
      webhook: https://hooks.example/bsched
      on: [failure]
`;
  await fs.writeFile(f.server.config, text);
  assert.ok(f.service.reload("test"));
  const s = await getSettings(f);
  assert.deepEqual(s.sets.data?.keep, { last: 8, monthly: 6 });
  assert.equal(s.sets.data?.day, undefined, "no day with daily");
  const same = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/data",
    payload: { hash: s.hash, settings: s.sets.data },
  });
  assert.equal((same.json() as { changed: boolean }).changed, false, same.body);
  const keep = { last: 10, monthly: 6 };
  const r = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/data",
    payload: { hash: s.hash, settings: { ...s.sets.data, keep } },
  });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(await fs.readFile(f.server.config, "utf8"), text.replace("last: 8", "last: 10"));
});

test("OK with several tabs changed is one edit: a bad field in one tab writes none of them, every bad field reported; all good → all written", async (t) => {
  const f = await standard(t);
  const s = await getSettings(f);
  const bad = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets",
    payload: {
      hash: s.hash,
      sets: {
        archive: { ...s.sets.archive, ...ARCHIVE_CHANGE },
        data: { ...s.sets.data, time: "25:00" },
        video: { ...s.sets.video, mode: "both" },
      },
    },
  });
  assert.equal(bad.statusCode, 400, bad.body);
  const paths = ((bad.json() as ApiError).error.fields ?? []).map((x) => x.path.join("."));
  assert.deepEqual(paths.sort(), ["sets.data.time", "sets.video.mode"], paths.join(", "));
  // The good Archive tab was not written either: the file is as it was.
  assert.equal(await fs.readFile(f.server.config, "utf8"), f.text);

  const good = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets",
    payload: {
      hash: s.hash,
      sets: { archive: { ...s.sets.archive, ...ARCHIVE_CHANGE }, data: { ...s.sets.data, time: "22:15" } },
    },
  });
  assert.equal(good.statusCode, 200, good.body);
  const after = await getSettings(f);
  assert.equal(after.hash, (good.json() as { hash: string }).hash);
  assert.equal(after.sets.data?.time, "22:15");
  assert.equal(after.sets.archive?.frequency, "monthly");
  assert.equal(after.sets.archive?.time, "23:30");
  // Comments kept: every comment line of the file as `bsched init` wrote it is still there.
  const text = await fs.readFile(f.server.config, "utf8");
  for (const line of f.text.split("\n").filter((l) => l.trim().startsWith("#")))
    assert.ok(text.includes(line), line);
  // A stale hash: nothing written (someone else's edit stays).
  const stale = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets",
    payload: { hash: s.hash, sets: { data: { ...s.sets.data, time: "01:00" } } },
  });
  assert.equal(stale.statusCode, 409, stale.body);
  assert.equal(await fs.readFile(f.server.config, "utf8"), text);
});
