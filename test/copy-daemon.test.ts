import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { DaemonService } from "../src/daemon/service.ts";
import type { Clock } from "../src/platform/clock.ts";
import { tempDir } from "./helpers/cli.ts";
import { waitFor } from "./helpers/live.ts";
import { webhookReceiver } from "./helpers/webhook.ts";

/** The clock at real speed from an instant the test moves forward (as in daemon-service.test.ts). */
class ShiftClock implements Clock {
  offset: number;
  constructor(at: number) {
    this.offset = at - Date.now();
  }
  now(): Date {
    return new Date(Date.now() + this.offset);
  }
  jumpTo(at: number): void {
    this.offset = at - Date.now();
  }
}

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

test("daemon: a scheduled backup is copied like a manual one; a destination that fails is a copy_failed notification and a catalog record", async (t) => {
  const dir = await tempDir("bsched-copy-daemon-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const hook = await webhookReceiver({ after: (fn) => t.after(fn) });
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  await fs.writeFile(path.join(dir, "srv", "Data", "db.dat"), "cardholders");
  const usb = path.join(dir, "usb");
  // nas is a folder under a mount point that is not there.
  const nas = path.join(dir, "mnt", "nas");
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:
  root: ${path.join(dir, "srv")}
  timezone: UTC
destinations:
  usb: { type: local, path: ${usb} }
  nas: { type: local, path: ${nas} }
sets:
  data:
    letter: D
    source: Data
    frequency: daily
    time: "04:00"
    copies: [usb, nas]
    notify: { webhook: "${hook.url("/hook")}" }
`,
  );
  const slot = new Date();
  slot.setUTCDate(slot.getUTCDate() + 1);
  slot.setUTCHours(4, 0, 0, 0);
  const clock = new ShiftClock(slot.getTime() - 3_600_000);
  const service = new DaemonService({ configFile: config, clock, log: quiet, watchMs: 0 });
  await service.start();
  let stopped = false;
  t.after(async () => {
    if (!stopped) await service.stop({ graceMs: 60_000 }).catch(() => undefined);
  });
  clock.jumpTo(slot.getTime());
  service.poke();
  await waitFor("the scheduled run's copies", () => service.catalog.copies("data").length === 2, 60_000);
  const run = service.catalog.runs({ set: "data" })[0];
  assert.equal(run?.trigger, "schedule");
  assert.equal(run?.status, "warnings");
  assert.equal(run?.errorCode, "COPY_FAILED");
  const name = run?.backup as string;
  assert.deepEqual(await fs.readdir(usb), [name], "the scheduled backup is on usb");
  const copies = Object.fromEntries(service.catalog.copies("data").map((c) => [c.destination, c]));
  assert.deepEqual([copies.usb?.ok, copies.usb?.copied, copies.usb?.newest], [true, 1, name]);
  assert.deepEqual([copies.nas?.ok, copies.nas?.errorCode], [false, "DESTINATION_MISSING"]);
  assert.deepEqual(
    service.catalog
      .backups("data")
      .map((b) => b.destination)
      .sort(),
    ["folder", "usb"],
  );
  await waitFor(
    "the copy_failed notification",
    () => hook.posts.some((p) => p.event === "copy_failed"),
    60_000,
  );
  const post = hook.posts.find((p) => p.event === "copy_failed");
  assert.equal(post?.destination, "nas");
  assert.equal(post?.set, "data");
  stopped = true;
  await service.stop({ graceMs: 60_000 });
});
