import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ClockWatch, formatSpan } from "../src/daemon/clock-watch.ts";
import type { Log } from "../src/daemon/scheduler.ts";
import { config, FakeClock, harness, set } from "./helpers/daemon-fakes.ts";

/*
 * The daemon notices a clock jump or a suspended machine (issue 14 item 5): the injected clock's
 * wall time against its monotonic time between two looks. What runs is the catch-up rule's
 * (already tested in daemon-scheduler.test.ts); here, that the log says why.
 */

/** A fake clock with a monotonic side: `sleep` moves both, `suspend` and `setWall` only the wall. */
class JumpClock extends FakeClock {
  mono = 0;
  monotonic(): number {
    return this.mono;
  }
  /** Time passing normally (the daemon slept): wall and monotonic together. */
  pass(ms: number): void {
    this.t += ms;
    this.mono += ms;
  }
  /** The machine sleeps `ms` (the wall moves, the monotonic clock stands still); it woke `awakeMs` ago. */
  suspend(ms: number, awakeMs = 1000): void {
    this.t += ms + awakeMs;
    this.mono += awakeMs;
  }
  /** NTP or `date -s` steps the wall clock by `ms` while `elapsedMs` really pass. */
  step(ms: number, elapsedMs = 1000): void {
    this.t += ms + elapsedMs;
    this.mono += elapsedMs;
  }
}

function recorder(): Log & { lines: { level: string; msg: string; obj: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const at = (level: string) => (obj: object, msg: string) => {
    lines.push({ level, msg, obj: obj as Record<string, unknown> });
  };
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}

function setup(catchUp: "once" | "skip" = "once") {
  const clock = new JumpClock("2026-03-01T00:00:00.000Z");
  const log = recorder();
  const h = harness(config([set("data", { catchUp })]), clock, { deps: { log } });
  const look = async () => {
    h.sched.tick();
    await h.sched.idle();
  };
  return { clock, log, h, look };
}

describe("clock jumps and suspends are noticed and said", () => {
  test("a suspend over a slot: the log says the machine may have been suspended, and the slot runs once as a catch-up, saying why", async () => {
    const { clock, log, h, look } = setup();
    await look();
    clock.suspend(7 * 3600_000); // 00:00 → 07:00:01, over 04:00
    await look();
    const jump = log.lines.find((l) => l.msg.startsWith("the clock jumped forward"));
    assert.ok(jump, JSON.stringify(log.lines));
    assert.equal(jump.level, "warn");
    assert.match(
      jump.msg,
      /^the clock jumped forward by 7 h, or the machine was suspended that long: slots passed meanwhile follow the catch-up rule/,
    );
    assert.equal(jump.obj.jumpMs, 7 * 3600_000);
    const missed = log.lines.find((l) => l.msg.startsWith("missed slots"));
    assert.equal(missed?.msg, "missed slots: running once now");
    assert.match(String(missed?.obj.why), /suspended/);
    assert.equal(h.calls.length, 1);
    assert.equal(h.catalog.runs()[0]?.trigger, "catch-up");
    // Said once: the next look, an ordinary minute later, says nothing more.
    clock.pass(60_000);
    await look();
    assert.equal(log.lines.filter((l) => l.msg.startsWith("the clock jumped")).length, 1);
  });

  test("catchUp: skip: the suspended-over slot is recorded missed, the log saying why", async () => {
    const { clock, log, h, look } = setup("skip");
    await look();
    clock.step(2 * 86_400_000); // NTP corrects a clock two days slow
    await look();
    assert.equal(h.calls.length, 0);
    assert.equal(h.catalog.runs()[0]?.status, "missed");
    const missed = log.lines.find((l) => l.msg.startsWith("missed slots"));
    assert.equal(missed?.msg, "missed slots: skipped (catchUp: skip)");
    assert.match(String(missed?.obj.why), /^the clock jumped forward by 2 d/);
  });

  test("a clock stepped back: said, and the slot already run is not run again", async () => {
    const { clock, log, h, look } = setup();
    await look();
    clock.pass(4 * 3600_000); // 04:00: the slot runs, no jump
    await look();
    assert.equal(h.calls.length, 1);
    assert.equal(h.catalog.runs()[0]?.trigger, "schedule");
    assert.equal(log.lines.filter((l) => l.msg.startsWith("the clock")).length, 0, "time passing is no jump");
    clock.step(-3600_000, 60_000); // back an hour, a minute later
    await look();
    const back = log.lines.find((l) => l.msg.startsWith("the clock went back"));
    assert.match(
      back?.msg ?? "",
      /^the clock went back by 1 h: slots already handled are not run again/,
      JSON.stringify(log.lines),
    );
    clock.pass(3600_000 + 120_000); // 04:01 again
    await look();
    assert.equal(h.calls.length, 1, "04:00 is not run a second time");
  });

  test("drift below the tolerance, and a clock without a monotonic side, say nothing", () => {
    const w = new ClockWatch(60_000);
    assert.equal(w.observe(new Date(0), 0), undefined);
    assert.equal(w.observe(new Date(120_000), 100_000), undefined, "20 s of drift");
    assert.ok(w.observe(new Date(400_000), 200_000), "200 s more than the monotonic clock");
    assert.equal(new ClockWatch().observe(new Date(0), undefined), undefined);
    assert.equal(formatSpan(90_000), "1 min 30 s");
    assert.equal(formatSpan(10_800_000), "3 h");
  });
});
