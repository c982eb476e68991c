import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { DaemonService } from "../src/daemon/service.ts";
import { systemClock } from "../src/platform/clock.ts";
import { apiFixture, recordingLog } from "./helpers/api.ts";
import { writeCardsDb } from "./helpers/drill.ts";
import { waitFor } from "./helpers/live.ts";
import { makeServer } from "./helpers/server.ts";

// Issue 14 item 1: the daemon schedules drills like backups, and a drill never runs at the same
// time as a backup of its set (the set's run lock: the backup waits for the drill to end).

test("the daemon drills a set on its drill schedule; a backup asked for meanwhile waits for the drill", {
  timeout: 300_000,
}, async (t) => {
  const s = await makeServer({ prefix: "bsched-drill-daemon-" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const gate = path.join(s.dir, "gate");
  const entered = path.join(s.dir, "entered");
  await fs.appendFile(
    s.config,
    `    drill: { frequency: every, every: 10s, scratch: ../scratch, check: 'touch ${entered}; while [ ! -f ${gate} ]; do sleep 0.1; done' }\n`,
  );
  await writeCardsDb(path.join(s.data, "cards.db"));
  const first = await s.backup();

  const log = recordingLog();
  const service = new DaemonService({
    configFile: s.config,
    clock: systemClock,
    log,
    watchMs: 0,
    control: false,
    maxSleepMs: 1000,
  });
  await service.start();
  let stopped = false;
  t.after(async () => {
    await fs.writeFile(gate, "").catch(() => undefined);
    if (!stopped) await service.stop({ graceMs: 60_000 }).catch(() => undefined);
  });

  // The first slot comes within 10 s: the drill restores and waits in its check command.
  await waitFor(
    "the scheduled drill's check command",
    () =>
      fs.access(entered).then(
        () => true,
        () => false,
      ),
    120_000,
  );
  const drillRun = service.runs.list().find((r) => r.kind === "drill");
  assert.equal(drillRun?.trigger, "schedule");

  // A backup asked for now meets the drill's lock: it waits, nothing is written meanwhile.
  const backup = service.runNow("data");
  await waitFor(
    "the backup to meet the drill's lock",
    () => log.lines.some((l) => l.msg === "set busy: retrying in 15 s"),
    60_000,
  );
  const names = async () => (await fs.readdir(s.backups)).filter((n) => n.startsWith("D_"));
  assert.deepEqual(await names(), [first.name], "no backup was written during the drill");

  await fs.writeFile(gate, "");
  const made = await backup.result;
  assert.notEqual(made.summary.name, first.name);
  const drills = service.catalog.drills({ set: "data" });
  const scheduled = drills.find((d) => d.trigger === "schedule");
  assert.equal(scheduled?.ok, true, JSON.stringify(drills));
  assert.equal(scheduled?.backup, first.name);
  assert.ok(
    Date.parse(scheduled?.finishedAt as string) <= Date.parse(made.summary.startedAt),
    "the backup started after the drill ended",
  );
  assert.ok(
    log.lines.some((l) => l.msg === "drill passed: proven restorable" && l.obj.backup === first.name),
  );

  stopped = true;
  const r = await service.stop({ graceMs: 60_000 });
  assert.equal(r.finished, true);
  assert.deepEqual(
    (await fs.readdir(path.join(s.dir, "scratch"))).filter((n) => n.startsWith("bsched-drill-")),
    [],
  );
});

test("a drill asked for through the API runs as a run of kind drill, and GET /api/status shows the set proven restorable", {
  timeout: 300_000,
}, async (t) => {
  const { app, server } = await apiFixture(t, { setKeys: ["drill: { scratch: ../scratch }"] });
  await writeCardsDb(path.join(server.data, "cards.db"));
  const b = await server.backup();
  const started = await app.inject({
    method: "POST",
    url: "/api/sets/data/drill",
    payload: { dest: "local" },
  });
  assert.equal(started.statusCode, 202, started.body);
  const run = started.json() as { id: string; kind: string; set: string };
  assert.deepEqual([run.kind, run.set], ["drill", "data"]);
  const runState = async () =>
    (await app.inject({ method: "GET", url: `/api/runs/${run.id}` })).json() as {
      state: string;
      ok: boolean;
      result: { kind: string };
    };
  await waitFor("the drill's end", async () => (await runState()).state === "ended", 120_000);
  const one = await runState();
  assert.deepEqual([one.ok, one.result.kind], [true, "drill"]);
  const status = (await app.inject({ method: "GET", url: "/api/status" })).json() as {
    sets: {
      set: string;
      drills: { places: { destination: string; lastProven: { backup: string; restoreMs: number } }[] };
    }[];
  };
  const place = status.sets.find((s) => s.set === "data")?.drills.places[0];
  assert.equal(place?.destination, "local");
  assert.equal(place?.lastProven.backup, b.name);
  assert.equal(typeof place?.lastProven.restoreMs, "number");
  // The window's settings show the set's drill as written (the Settings screen keeps it when saving).
  const settings = await app.inject({ method: "GET", url: "/api/settings" });
  assert.equal(settings.statusCode, 200, settings.body);
  assert.equal(
    (settings.json() as { sets: { data: { drill: { scratch: string } } } }).sets.data.drill.scratch,
    "../scratch",
  );
  // An unknown set is the API's 404, as for a backup.
  assert.equal((await app.inject({ method: "POST", url: "/api/sets/nope/drill" })).statusCode, 404);
});
