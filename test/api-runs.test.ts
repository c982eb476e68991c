import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import type { ServerResponse } from "node:http";
import path from "node:path";
import { test } from "node:test";
import { EventStream } from "../src/api/event-stream.ts";
import { apiFixture } from "./helpers/api.ts";
import { openSse, type SseEvent } from "./helpers/sse.ts";

type RunEvent = { type: string; run: { id: string }; ok: boolean | null; error: { code: string } | null } & {
  result: { kind: string; backup: { name: string } } | null;
};

const runEnded = (id: string) => (e: SseEvent) =>
  e.event === "run" && (e.data as RunEvent).type === "ended" && (e.data as RunEvent).run.id === id;

async function someFiles(dir: string, n: number, size: number): Promise<void> {
  for (let i = 0; i < n; i++) await fs.writeFile(path.join(dir, `f${i}.db`), randomBytes(size));
}

test("back up now through the API: the event stream shows it start, progress and end; history and the backups list have it", async (t) => {
  const { app, server } = await apiFixture(t);
  await someFiles(server.data, 6, 300_000);
  const base = await app.listen({ host: "127.0.0.1", port: 0 });
  const sse = await openSse(`${base}/api/events`);
  // A second client that goes away mid-run: the run never notices.
  const leaver = await openSse(`${base}/api/events`);
  t.after(() => sse.close());
  assert.equal(sse.res.status, 200);
  assert.match(sse.res.headers.get("content-type") ?? "", /^text\/event-stream/);
  assert.equal(sse.res.headers.get("cache-control"), "no-cache, no-transform");
  assert.equal(sse.res.headers.get("x-accel-buffering"), "no");

  const started = await app.inject({
    method: "POST",
    url: "/api/sets/data/backup",
    payload: { mode: "full" },
  });
  assert.equal(started.statusCode, 202, started.body);
  const run = started.json() as { id: string; kind: string; set: string };
  assert.equal(run.kind, "backup");
  assert.equal(run.set, "data");
  await leaver.waitFor((e) => e.event === "run" && (e.data as RunEvent).run.id === run.id);
  await leaver.close();

  const ended = (await sse.waitFor(runEnded(run.id))).data as RunEvent;
  assert.equal(ended.ok, true, JSON.stringify(ended));
  assert.equal(ended.result?.kind, "backup");
  const name = ended.result?.backup.name as string;
  assert.match(name, /^D_\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d/);
  assert.ok(
    sse.events.some(
      (e) =>
        e.event === "run" &&
        (e.data as RunEvent).type === "started" &&
        (e.data as RunEvent).run.id === run.id,
    ),
  );
  const progress = sse.events.filter(
    (e) => e.event === "progress" && (e.data as { runId: string }).runId === run.id,
  );
  assert.ok(progress.length > 0, "progress was seen");
  // Throttled to 10 a second per run, the newest always sent before the run's end: its last is "done".
  assert.equal(
    ((progress.at(-1) as SseEvent).data as { progress: { phase: string } }).progress.phase,
    "done",
  );
  assert.ok(sse.comments.includes("connected"));

  // The ended run is still known, with its result; it cannot be cancelled any more.
  const one = (await app.inject({ method: "GET", url: `/api/runs/${run.id}` })).json() as RunEvent & {
    state: string;
  };
  assert.equal(one.state, "ended");
  assert.equal(one.result?.backup.name, name);
  const late = await app.inject({ method: "DELETE", url: `/api/runs/${run.id}` });
  assert.equal(late.statusCode, 409);
  assert.equal((await app.inject({ method: "GET", url: "/api/runs/nope" })).statusCode, 404);
  assert.deepEqual((await app.inject({ method: "GET", url: "/api/runs" })).json(), []);

  const hist = (await app.inject({ method: "GET", url: "/api/history?set=data" })).json() as {
    backup: string;
    status: string;
    trigger: string;
  }[];
  assert.equal(hist[0]?.backup, name);
  assert.equal(hist[0]?.status, "ok");
  const listed = (await app.inject({ method: "GET", url: "/api/sets/data/backups" })).json() as {
    backups: { name: string; state: string }[];
  };
  assert.deepEqual(
    listed.backups.map((b) => [b.name, b.state]),
    [[name, "ok"]],
  );
  const status = (await app.inject({ method: "GET", url: "/api/status" })).json() as {
    sets: { set: string; backups: { count: number; newest: string }; lastRun: { status: string } }[];
  };
  assert.equal(status.sets[0]?.backups.newest, name);
  assert.equal(status.sets[0]?.lastRun.status, "ok");
});

test("cancel a backup through the API: it ends CANCELLED, nothing is listed, history says failed; a config reload is an event", async (t) => {
  const { app, server, service } = await apiFixture(t);
  await someFiles(server.data, 3, 100_000);
  // The backup's before hook waits for a file: the run is held there until the test lets it go.
  const gate = path.join(server.dir, "go");
  await fs.appendFile(
    server.config,
    `    hooks: { before: "while [ ! -e '${gate}' ]; do sleep 0.05; done", timeout: 300 }\n`,
  );
  const base = await app.listen({ host: "127.0.0.1", port: 0 });
  const sse = await openSse(`${base}/api/events`);
  t.after(() => sse.close());
  // The reload is told on the stream.
  assert.equal(service.reload("test"), true);
  assert.deepEqual((await sse.waitFor((e) => e.event === "config")).data, { why: "test", ok: true });
  const run = (await app.inject({ method: "POST", url: "/api/sets/data/backup" })).json() as { id: string };
  const listedRuns = (await app.inject({ method: "GET", url: "/api/runs" })).json() as { id: string }[];
  assert.deepEqual(
    listedRuns.map((r) => r.id),
    [run.id],
  );
  const cancel = await app.inject({ method: "DELETE", url: `/api/runs/${run.id}` });
  assert.equal(cancel.statusCode, 202, cancel.body);
  await fs.writeFile(gate, "");
  const ended = (await sse.waitFor(runEnded(run.id))).data as RunEvent;
  assert.equal(ended.ok, false);
  assert.equal(ended.error?.code, "CANCELLED");
  const listed = (await app.inject({ method: "GET", url: "/api/sets/data/backups" })).json() as {
    backups: unknown[];
  };
  assert.deepEqual(listed.backups, []);
  const failed = (await app.inject({ method: "GET", url: "/api/history?result=failed" })).json() as {
    errorCode: string | null;
    status: string;
  }[];
  assert.equal(failed[0]?.status, "failed");
  assert.equal(failed[0]?.errorCode, "CANCELLED");
  const one = (await app.inject({ method: "GET", url: `/api/runs/${run.id}` })).json() as RunEvent;
  assert.equal(one.error?.code, "CANCELLED");
});

test("back up now: an unknown set is 404 SET_UNKNOWN with the CLI's hint", async (t) => {
  const { app } = await apiFixture(t);
  const r = await app.inject({ method: "POST", url: "/api/sets/nope/backup" });
  assert.equal(r.statusCode, 404);
  const body = r.json() as { error: { code: string; hint: string | null } };
  assert.equal(body.error.code, "SET_UNKNOWN");
  assert.ok(body.error.hint);
});

test("the event stream sends at most one progress event per run per tenth of a second, the newest before the run's end", () => {
  const written: string[] = [];
  const fake = {
    writableNeedDrain: false,
    destroyed: false,
    writableEnded: false,
    writeHead() {},
    write(s: string) {
      written.push(s);
      return true;
    },
    on() {},
    end() {
      this.writableEnded = true;
    },
  };
  const stream = new EventStream(fake as unknown as ServerResponse, 60_000);
  const info = { id: "r1", kind: "backup" as const, set: "data", trigger: "manual" as const, startedAt: "x" };
  const other = { ...info, id: "r2" };
  stream.run({ type: "started", info });
  const tick = (i: number, run = info) =>
    stream.run({
      type: "event",
      info: run,
      event: {
        kind: "progress",
        progress: { phase: "copy", files: i, bytes: i, totalFiles: 100, totalBytes: 100 },
      },
    });
  for (let i = 1; i <= 100; i++) tick(i);
  tick(1, other);
  const progressOf = (id: string) =>
    written
      .filter((w) => w.startsWith("event: progress") && w.includes(`"runId":"${id}"`))
      .map((w) => JSON.parse(w.split("data: ")[1] as string));
  // The first at once, the 99 others held (only the newest is kept); another run is not held back.
  assert.deepEqual(
    progressOf("r1").map((p) => p.progress.files),
    [1],
  );
  assert.equal(progressOf("r2").length, 1);
  stream.run({
    type: "ended",
    info,
    outcome: { ok: false, endedAt: "y", error: { code: "CANCELLED", message: "m", hint: null } },
  });
  assert.deepEqual(
    progressOf("r1").map((p) => p.progress.files),
    [1, 100],
  );
  const last = written.at(-1) as string;
  assert.match(last, /^event: run\n/);
  assert.match(last, /"type":"ended"/);
  assert.match(last, /"code":"CANCELLED"/);
  stream.close();
  tick(101, other);
  assert.equal(progressOf("r2").length, 1, "nothing is written once closed");
});
