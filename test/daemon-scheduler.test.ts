import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { memoryCatalog } from "../src/catalog/memory/memory-catalog.ts";
import { ENDED_KEPT, type Timer } from "../src/daemon/scheduler.ts";
import { nextRuns } from "../src/schedule/schedule.ts";
import { config, deferred, FakeClock, flush, harness, set } from "./helpers/daemon-fakes.ts";

describe("two simulated years through DST, run by the daemon loop on a fake clock", () => {
  for (const tz of [
    "Europe/Paris",
    "America/New_York",
    "America/Santiago",
    "Australia/Sydney",
    "Asia/Kolkata",
  ]) {
    test(tz, async () => {
      const sets = [
        set("daily", { time: "02:30" }),
        set("midnight", { letter: "M", time: "00:00" }),
        set("weekly", { letter: "W", frequency: "weekly", day: "sunday", time: "02:00" }),
        set("monthly", { letter: "O", frequency: "monthly", day: 31, time: "01:30" }),
        set("ondemand", { letter: "N", frequency: "now" }),
        set("manual", { letter: "X", automatic: false }),
      ];
      const start = "2026-01-01T00:00:00.000Z";
      const end = Date.parse("2028-01-01T00:00:00.000Z");
      const clock = new FakeClock(start);
      const box: { stop?: () => void } = {};
      // The timer sleeps exactly as asked, letting started backups finish first.
      const timer: Timer = {
        async sleep(ms) {
          await flush();
          clock.t += ms;
          if (clock.t > end) box.stop?.();
        },
      };
      const h = harness(config(sets, tz), clock, { timer });
      box.stop = () => void h.sched.stop(1000);
      await h.sched.start();
      await h.sched.idle();
      for (const s of sets) {
        const want = (s.automatic ? nextRuns(s, new Date(start), tz, 1000) : [])
          .filter((d) => d.getTime() <= end)
          .map((d) => d.toISOString());
        const got = h.calls.filter((c) => c.set === s.id).map((c) => c.at);
        assert.deepEqual(got, want, `${tz} ${s.id}: each slot exactly once, exactly on time`);
        const runs = h.catalog.runs({ set: s.id });
        assert.ok(
          runs.every((r) => r.trigger === "schedule" && r.status === "ok" && r.planned === r.startedAt),
        );
      }
      assert.equal(h.calls.filter((c) => c.set === "daily").length, 730);
    });
  }
});

describe("missed slots while the daemon was down", () => {
  test("catchUp once: one run at start-up for three missed slots, then the schedule resumes", async () => {
    const catalog = memoryCatalog();
    catalog.markPlanned("data", "2026-03-01T04:00:00.000Z");
    const clock = new FakeClock("2026-03-04T09:00:00.000Z");
    const h = harness(config([set("data")]), clock, { catalog });
    await h.at("2026-03-04T09:00:00.000Z");
    await h.sched.idle();
    assert.deepEqual(h.calls, [{ set: "data", at: "2026-03-04T09:00:00.000Z" }]);
    const [run] = catalog.runs();
    assert.equal(run?.trigger, "catch-up");
    assert.equal(run?.slots, 3);
    assert.equal(run?.planned, "2026-03-04T04:00:00.000Z");
    assert.equal(h.notes.length, 0, "no notify config: nothing posted");
    await h.at("2026-03-04T12:00:00.000Z");
    await h.at("2026-03-05T04:00:00.000Z");
    await h.sched.idle();
    assert.deepEqual(
      h.calls.map((c) => c.at),
      ["2026-03-04T09:00:00.000Z", "2026-03-05T04:00:00.000Z"],
    );
    assert.equal(catalog.runs()[0]?.trigger, "schedule");
  });

  test("catchUp skip: nothing runs, one `missed` record and a missed notification", async () => {
    const catalog = memoryCatalog();
    catalog.markPlanned("data", "2026-03-01T04:00:00.000Z");
    const clock = new FakeClock("2026-03-04T09:00:00.000Z");
    const s = set("data", { catchUp: "skip", notify: { webhook: "http://127.0.0.1:9/x", on: ["missed"] } });
    const h = harness(config([s]), clock, { catalog });
    await h.at("2026-03-04T09:00:00.000Z");
    await h.sched.idle();
    assert.equal(h.calls.length, 0);
    const runs = catalog.runs();
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.status, "missed");
    assert.equal(runs[0]?.slots, 3);
    assert.equal(h.notes.length, 1);
    assert.equal(h.notes[0]?.event, "missed");
    assert.equal(h.notes[0]?.missedSlots, 3);
    // Restarting again does not re-report the same slots.
    const h2 = harness(config([s]), clock, { catalog });
    await h2.at("2026-03-04T10:00:00.000Z");
    assert.equal(catalog.runs().length, 1);
  });

  test("the first start ever catches nothing up (no slot was ever due)", async () => {
    const clock = new FakeClock("2026-03-04T09:00:00.000Z");
    const h = harness(config([set("data")]), clock);
    await h.at("2026-03-04T09:00:00.000Z");
    assert.equal(h.calls.length, 0);
    await h.at("2026-03-05T04:00:00.000Z");
    await h.sched.idle();
    assert.equal(h.calls.length, 1);
  });

  test("a slot that passes while the daemon is still starting runs, as an ordinary scheduled run", async () => {
    // The daemon started at 03:59:57 but (config, catalog, socket on a loaded machine) first looked at
    // the clock at 04:00:05: the 04:00 slot was after its start, so it is due.
    const clock = new FakeClock("2026-03-04T03:59:57.000Z");
    const h = harness(config([set("data")]), clock, { deps: { since: clock.now() } });
    await h.at("2026-03-04T04:00:05.000Z");
    await h.sched.idle();
    assert.deepEqual(h.calls, [{ set: "data", at: "2026-03-04T04:00:05.000Z" }]);
    const [run] = h.catalog.runs({ set: "data" });
    assert.deepEqual(
      [run?.trigger, run?.planned, run?.status],
      ["schedule", "2026-03-04T04:00:00.000Z", "ok"],
    );
  });

  test("a restart right after a run does not run the slot again; a queued but unstarted slot is caught up", async () => {
    const catalog = memoryCatalog();
    const clock = new FakeClock("2026-03-01T00:00:00.000Z");
    const h = harness(config([set("data")]), clock, { catalog });
    await h.at("2026-03-01T00:00:00.000Z");
    await h.at("2026-03-01T04:00:00.000Z");
    await h.sched.idle();
    assert.equal(h.calls.length, 1);
    const h2 = harness(config([set("data")]), clock, { catalog });
    await h2.at("2026-03-01T04:00:30.000Z");
    assert.equal(h2.calls.length, 0, "the 04:00 slot was handled by the previous daemon");
    await h2.sched.stop(10);
    // Now a slot whose run was queued behind another set when the daemon stopped.
    const two = config([set("arch", { letter: "A" }), set("data")]);
    const h3 = harness(two, clock, { catalog });
    h3.gates.set("arch", deferred());
    await h3.at("2026-03-01T04:01:00.000Z"); // first sight of arch: its baseline
    await h3.at("2026-03-02T04:00:00.000Z");
    assert.deepEqual(h3.sched.runningSets(), ["arch"]);
    assert.deepEqual(h3.sched.queuedSets(), ["data"]);
    await h3.sched.stop(10);
    const h4 = harness(two, clock, { catalog });
    await h4.at("2026-03-02T05:00:00.000Z");
    await h4.sched.idle();
    assert.equal(
      h3.calls.length + h4.calls.length,
      2,
      "each set's 03-02 slot ran exactly once, across the two daemons",
    );
  });
});

describe("no overlap, one at a time", () => {
  test("a set's next slot waits for its running backup; never two at once", async () => {
    const clock = new FakeClock("2026-03-01T00:00:00.000Z");
    const h = harness(config([set("data")]), clock);
    const gate = deferred();
    h.gates.set("data", gate);
    await h.at("2026-03-01T00:00:00.000Z");
    await h.at("2026-03-01T04:00:00.000Z");
    assert.equal(h.calls.length, 1);
    await h.at("2026-03-02T04:00:00.000Z"); // next slot while still running
    await h.at("2026-03-02T04:00:10.000Z");
    assert.equal(h.calls.length, 1, "the second run has not started");
    assert.deepEqual(h.sched.queuedSets(), ["data"]);
    h.gates.delete("data");
    gate.resolve();
    await h.sched.idle();
    assert.equal(h.calls.length, 2);
    assert.equal(h.maxActiveSame, 1);
  });

  test("concurrency 1 queues different sets; concurrency 2 runs two sets at once, never the same twice", async () => {
    for (const concurrency of [1, 2]) {
      const clock = new FakeClock("2026-03-01T00:00:00.000Z");
      const sets = [set("data"), set("arch", { letter: "A" }), set("video", { letter: "V" })];
      const h = harness(config(sets, "UTC", concurrency), clock);
      const gates = sets.map((s) => {
        const g = deferred();
        h.gates.set(s.id, g);
        return g;
      });
      await h.at("2026-03-01T00:00:00.000Z");
      await h.at("2026-03-01T04:00:00.000Z");
      assert.equal(h.calls.length, concurrency);
      for (const g of gates) g.resolve();
      await h.sched.idle();
      await flush();
      await h.sched.idle();
      assert.equal(h.calls.length, 3);
      assert.equal(h.maxActive, concurrency);
      assert.equal(h.maxActiveSame, 1);
    }
  });
});

describe("clock jumps", () => {
  test("back: a slot already run is not run again when the clock passes it a second time", async () => {
    const clock = new FakeClock("2026-03-01T00:00:00.000Z");
    const h = harness(config([set("data")]), clock);
    await h.at("2026-03-01T00:00:00.000Z");
    await h.at("2026-03-01T04:00:00.000Z");
    await h.at("2026-03-01T03:00:00.000Z"); // NTP steps the clock back an hour
    await h.at("2026-03-01T04:00:00.000Z");
    await h.at("2026-03-01T04:30:00.000Z");
    await h.sched.idle();
    assert.equal(h.calls.length, 1);
    // msToNext never sleeps into the past, nor proposes the handled slot again.
    clock.set("2026-03-01T03:00:00.000Z");
    assert.equal(h.sched.msToNext(), Date.parse("2026-03-02T04:00:00Z") - Date.parse("2026-03-01T03:00:00Z"));
  });

  test("forward (suspend over a slot): the late slot runs once, as a catch-up", async () => {
    const clock = new FakeClock("2026-03-01T00:00:00.000Z");
    const h = harness(config([set("data")]), clock);
    await h.at("2026-03-01T00:00:00.000Z");
    await h.at("2026-03-01T07:00:00.000Z"); // woke 3 h after the slot
    await h.sched.idle();
    assert.equal(h.calls.length, 1);
    assert.equal(h.catalog.runs()[0]?.trigger, "catch-up");
    await h.at("2026-03-01T07:00:01.000Z");
    assert.equal(h.calls.length, 1);
  });

  test("forward over several days: once, not once per slot", async () => {
    const clock = new FakeClock("2026-03-01T00:00:00.000Z");
    const h = harness(config([set("data")]), clock);
    await h.at("2026-03-01T00:00:00.000Z");
    await h.at("2026-03-10T12:00:00.000Z");
    await h.sched.idle();
    assert.equal(h.calls.length, 1);
    assert.equal(h.catalog.runs()[0]?.slots, 10, "03-01 … 03-10 04:00");
  });

  test("a wake a little late (within tolerance) is an ordinary scheduled run", async () => {
    const clock = new FakeClock("2026-03-01T00:00:00.000Z");
    const h = harness(config([set("data")]), clock);
    await h.at("2026-03-01T00:00:00.000Z");
    await h.at("2026-03-01T04:00:45.000Z");
    await h.sched.idle();
    assert.equal(h.catalog.runs()[0]?.trigger, "schedule");
  });
});

describe("reload (SIGHUP / changed config)", () => {
  test("a running backup is not dropped; the new schedule applies; a removed set's queued run is dropped", async () => {
    const clock = new FakeClock("2026-03-01T00:00:00.000Z");
    const old = config([set("data"), set("arch", { letter: "A" })]);
    const h = harness(old, clock);
    const gate = deferred();
    h.gates.set("data", gate);
    await h.at("2026-03-01T00:00:00.000Z");
    await h.at("2026-03-01T04:00:00.000Z");
    assert.deepEqual(h.sched.runningSets(), ["data"]);
    assert.deepEqual(h.sched.queuedSets(), ["arch"]);
    h.sched.reload(config([set("data", { time: "02:00" })]));
    assert.deepEqual(h.sched.queuedSets(), [], "arch was removed from the config");
    await h.at("2026-03-01T04:00:30.000Z");
    assert.equal(h.calls.length, 1, "today's 02:00 of the new schedule was never due: not caught up");
    gate.resolve();
    h.gates.delete("data");
    await h.sched.idle();
    assert.equal(
      h.catalog.runs({ set: "data" })[0]?.status,
      "ok",
      "the running backup finished and was recorded",
    );
    await h.at("2026-03-02T02:00:00.000Z");
    await h.at("2026-03-02T04:00:00.000Z");
    await h.sched.idle();
    assert.deepEqual(
      h.calls.filter((c) => c.set === "data").map((c) => c.at),
      ["2026-03-01T04:00:00.000Z", "2026-03-02T02:00:00.000Z"],
      "the new time runs, the old one no more",
    );
  });

  test("reload wakes the sleeping loop so a new earlier slot is not slept through", async () => {
    const clock = new FakeClock("2026-03-01T00:00:00.000Z");
    const sleeps: number[] = [];
    let wake: (() => void) | undefined;
    const timer: Timer = {
      sleep(ms, signal) {
        sleeps.push(ms);
        return new Promise((r) => {
          wake = () => r();
          signal.addEventListener("abort", () => r(), { once: true });
        });
      },
    };
    const h = harness(config([set("data", { time: "23:00" })]), clock, { timer });
    const loop = h.sched.start();
    await flush();
    assert.equal(sleeps.at(-1), 23 * 3_600_000);
    h.sched.reload(config([set("data", { time: "01:00" })]));
    await flush();
    assert.equal(sleeps.at(-1), 3_600_000);
    void wake;
    await h.sched.stop(10);
    await loop;
  });
});

describe("outcomes", () => {
  test("retention runs only after a successful backup; failure is recorded", async () => {
    // The outcome's notification is backupNow's now (test/daemon-service.test.ts sends it for real).
    const clock = new FakeClock("2026-03-01T00:00:00.000Z");
    const s = set("data", { keep: { last: 3 } });
    const h = harness(config([s]), clock);
    await h.at("2026-03-01T00:00:00.000Z");
    h.failing.add("data");
    await h.at("2026-03-01T04:00:00.000Z");
    await h.sched.idle();
    assert.deepEqual(h.pruned, []);
    const failed = h.catalog.runs()[0];
    assert.equal(failed?.status, "failed");
    assert.match(failed?.error ?? "", /source of data is missing/);
    assert.equal(h.sched.ended.at(-1)?.status, "failed");
    // The scheduler records the same code and hint as a manual backup (an unexpected error: INTERNAL).
    assert.equal(failed?.errorCode, "INTERNAL");
    h.failing.delete("data");
    await h.at("2026-03-02T04:00:00.000Z");
    await h.sched.idle();
    assert.deepEqual(h.pruned, ["data"]);
    assert.equal(h.catalog.backups("data").length, 1);
  });

  test("a missed-slots notifier that throws is logged, never fatal", async () => {
    const catalog = memoryCatalog();
    catalog.markPlanned("data", "2026-03-01T04:00:00.000Z");
    const clock = new FakeClock("2026-03-04T09:00:00.000Z");
    const s = set("data", { notify: { webhook: "http://127.0.0.1:9/", on: ["missed"] } });
    const h = harness(config([s]), clock, {
      catalog,
      deps: {
        notify: async () => {
          throw new Error("webhook down");
        },
      },
    });
    await h.at("2026-03-04T09:00:00.000Z");
    await h.sched.idle();
    assert.equal(h.catalog.runs()[0]?.status, "ok");
    assert.equal(h.catalog.runs()[0]?.trigger, "catch-up");
  });

  test("stop waits for a running backup within the bound, and reports when it did not finish", async () => {
    const clock = new FakeClock("2026-03-01T00:00:00.000Z");
    const h = harness(config([set("data")]), clock);
    const gate = deferred();
    h.gates.set("data", gate);
    await h.at("2026-03-01T00:00:00.000Z");
    await h.at("2026-03-01T04:00:00.000Z");
    setTimeout(() => gate.resolve(), 20);
    assert.equal(await h.sched.stop(5000), true);
    assert.equal(h.catalog.runs()[0]?.status, "ok");

    const h2 = harness(config([set("data")]), clock);
    h2.gates.set("data", deferred());
    await h2.at("2026-03-02T04:00:00.000Z");
    await h2.at("2026-03-03T04:00:00.000Z");
    assert.equal(await h2.sched.stop(20), false);
    assert.equal(h2.sched.runningRunIds().length, 1);
  });
});

describe("a run cut short", () => {
  // `aborted`: stopped by the daemon itself; `interrupted`: its process was killed (issue 9 item 7).
  for (const status of ["aborted", "interrupted"] as const)
    test(`an ${status} run's slot is due again at the next start (once), then the schedule goes on`, async () => {
      const catalog = memoryCatalog();
      const id = catalog.startRun({
        set: "data",
        planned: "2026-03-01T04:00:00.000Z",
        trigger: "schedule",
        startedAt: "2026-03-01T04:00:00.000Z",
      });
      catalog.finishRun(id, { finishedAt: "2026-03-01T04:00:05.000Z", status, error: "killed" });
      const clock = new FakeClock("2026-03-01T06:00:00.000Z");
      const h = harness(config([set("data")]), clock, { catalog });
      await h.at("2026-03-01T06:00:00.000Z");
      await h.sched.idle();
      assert.deepEqual(h.calls, [{ set: "data", at: "2026-03-01T06:00:00.000Z" }]);
      const [run] = catalog.runs();
      assert.equal(run?.trigger, "catch-up");
      assert.equal(run?.planned, "2026-03-01T04:00:00.000Z");
      await h.at("2026-03-01T07:00:00.000Z");
      const h2 = harness(config([set("data")]), clock, { catalog });
      await h2.at("2026-03-01T08:00:00.000Z");
      await h2.sched.idle();
      assert.equal(h.calls.length + h2.calls.length, 1, "done now: not again");
    });
});

test("reload: a set that becomes automatic starts from the reload, not from an old mark", async () => {
  const catalog = memoryCatalog();
  catalog.markPlanned("data", "2026-01-01T04:00:00.000Z"); // scheduled long ago, then set to `now`
  const clock = new FakeClock("2026-03-01T10:00:00.000Z");
  const h = harness(config([set("data", { frequency: "now" })]), clock, { catalog });
  await h.at("2026-03-01T10:00:00.000Z");
  h.sched.reload(config([set("data")]));
  await h.at("2026-03-01T10:00:01.000Z");
  assert.equal(h.calls.length, 0);
  await h.at("2026-03-02T04:00:00.000Z");
  await h.sched.idle();
  assert.equal(h.calls.length, 1);
});

test("Scheduler.ended keeps only the newest runs (a daemon runs for months)", async () => {
  const clock = new FakeClock("2026-01-01T00:00:00.000Z");
  const h = harness(config([set("data")]), clock);
  await h.at("2026-01-01T00:00:00.000Z");
  const day = 86_400_000;
  for (let d = 0; d < ENDED_KEPT + 20; d++) {
    await h.at(new Date(Date.parse("2026-01-01T04:00:00.000Z") + d * day).toISOString());
    await h.sched.idle();
  }
  assert.equal(h.calls.length, ENDED_KEPT + 20);
  assert.equal(h.sched.ended.length, ENDED_KEPT);
  assert.equal(h.sched.ended.at(-1)?.runId, h.catalog.runs()[0]?.id, "the newest is kept");
});
