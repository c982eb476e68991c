import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { BschedError, errnoCode } from "../src/core/errors.ts";
import type { Destination, ReadHandle } from "../src/destination/destination.ts";
import { type FaultPlan, faulty } from "../src/destination/faulty.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { fromOsError } from "../src/platform/os-errors.ts";
import { isBackupName } from "../src/snapshot/naming.ts";
import { tempDir } from "./helpers/cli.ts";

// The fault wrapper itself (src/destination/faulty.ts): each planned fault happens where and when
// the plan says, shaped as the OS would give it; with no fault it passes the Destination contract
// (test/destination-contract.test.ts).

const NAME = "D_2026_12_06_04_00_00";
const DATA = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i & 0xff));

/** A local destination holding one published backup (files/data.bin = DATA), wrapped with `plan`. */
async function setup(t: { after(fn: () => Promise<void>): void }, plan: FaultPlan) {
  const dir = await tempDir("bsched-faulty-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const local = new LocalDestination(path.join(dir, "Backup"), { set: "data" });
  await local.ready();
  const st = await local.stage(NAME);
  await fs.mkdir(path.join(st.dir, "files"));
  await fs.writeFile(path.join(st.dir, "files", "data.bin"), DATA);
  await st.publish("{}\n");
  return { local, dest: faulty(local, plan) };
}

async function drain(h: ReadHandle, opts?: { start?: number; end?: number }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of h.stream({ ...opts, highWaterMark: 1000 })) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const backups = async (d: Destination) => (await d.names()).filter((n) => isBackupName(n));

test("faulty: the Nth call of an operation fails with an OS-shaped error naming the path; the others pass", async (t) => {
  const { dest } = await setup(t, { fail: [{ op: "open", nth: 2 }] });
  await (await dest.open(NAME, "files/data.bin")).close();
  const err = await dest.open(NAME, "files/data.bin").then(
    () => assert.fail("the second open fails"),
    (e: NodeJS.ErrnoException) => e,
  );
  assert.equal(err.code, "EIO");
  assert.equal(typeof err.errno, "number");
  assert.equal(err.syscall, "open");
  assert.match(err.message, /^EIO: i\/o error, open '.*D_2026_12_06_04_00_00\/files\/data\.bin'$/);
  const worded = fromOsError(err);
  assert.ok(
    worded instanceof BschedError && worded.code === "IO",
    "fromOsError words it as it would the OS's",
  );
  await (await dest.open(NAME, "files/data.bin")).close();
  assert.equal(dest.calls.get("open"), 3);
});

test("faulty: a fault scoped with `on` counts and fails only the calls on what it matches", async (t) => {
  const { dest, local } = await setup(t, { fail: [{ op: "open", nth: 1, on: /\/files\/data\.bin$/ }] });
  const st = await local.stage("D_2026_12_07_04_00_00");
  await fs.writeFile(path.join(st.dir, "other.bin"), "other");
  await st.publish("{}\n");
  await (await dest.open(NAME, "manifest.json")).close();
  await (await dest.open("D_2026_12_07_04_00_00", "other.bin")).close();
  await assert.rejects(dest.open(NAME, "files/data.bin"), (e: unknown) => errnoCode(e) === "EIO");
  await (await dest.open(NAME, "files/data.bin")).close();
});

test("faulty: readsOf limits the read faults to the files it matches", async (t) => {
  const { dest } = await setup(t, { shortReads: 10, crashStreamsAfterBytes: 10, readsOf: /data\.bin$/ });
  const m = await dest.open(NAME, "manifest.json");
  t.after(() => m.close());
  assert.equal((await drain(m)).toString(), "{}\n", "the manifest reads whole");
  const h = await dest.open(NAME, "files/data.bin");
  t.after(() => h.close());
  assert.equal(await h.read(Buffer.alloc(100), 0, 100, 0), 10);
  await assert.rejects(drain(h), (e: unknown) => errnoCode(e) === "EIO");
});

test("faulty: andAfter fails that call and every later one, with the code asked for", async (t) => {
  const { dest } = await setup(t, { fail: [{ op: "names", nth: 2, andAfter: true, code: "ESTALE" }] });
  assert.deepEqual(await backups(dest), [NAME]);
  for (let i = 0; i < 3; i++) {
    await assert.rejects(dest.names(), (e: unknown) => errnoCode(e) === "ESTALE");
  }
});

test("faulty: ENOSPC at publish publishes nothing; abort cleans; with the fault off the next publish works", async (t) => {
  const plan: FaultPlan = { enospcAtPublish: true };
  const { dest } = await setup(t, plan);
  const next = "D_2026_12_07_04_00_00";
  const st = await dest.stage(next);
  await fs.writeFile(path.join(st.dir, "x"), "x");
  const err = await st.publish("{}\n").then(
    () => assert.fail("publish fails"),
    (e: unknown) => e,
  );
  assert.equal(errnoCode(err), "ENOSPC");
  const worded = fromOsError(err, { path: dest.where });
  assert.ok(worded instanceof BschedError && worded.code === "DISK_FULL", String(worded));
  assert.deepEqual(await backups(dest), [NAME], "nothing published");
  await st.abort();
  assert.deepEqual(
    (await dest.names()).filter((n) => n.includes(next)),
    [],
    "no staging left",
  );
  plan.enospcAtPublish = false;
  const again = await dest.stage(next);
  await again.publish("{}\n");
  assert.deepEqual((await backups(dest)).sort(), [NAME, next]);
});

test("faulty: beforePublish sees the backup; throwing from it fails the publish", async (t) => {
  const seen: string[] = [];
  const { dest } = await setup(t, {
    beforePublish: (backup) => {
      seen.push(backup);
      throw new Error("stopped at publish");
    },
  });
  const st = await dest.stage("D_2026_12_07_04_00_00");
  await assert.rejects(st.publish("{}\n"), /stopped at publish/);
  assert.deepEqual(seen, ["D_2026_12_07_04_00_00"]);
  assert.deepEqual(await backups(dest), [NAME]);
  await st.abort();
});

test("faulty: short reads return at most N bytes a call; a cut file ends early for reads and streams", async (t) => {
  const plan: FaultPlan = { shortReads: 7 };
  const { dest } = await setup(t, plan);
  const h = await dest.open(NAME, "files/data.bin");
  t.after(() => h.close());
  const buf = Buffer.alloc(100);
  assert.equal(await h.read(buf, 0, 100, 50), 7);
  assert.ok(buf.subarray(0, 7).equals(DATA.subarray(50, 57)));
  plan.shortReads = undefined;
  plan.truncateReadsAt = 4000;
  assert.equal(await h.read(buf, 0, 100, 3950), 50, "up to the cut");
  assert.equal(await h.read(buf, 0, 100, 4000), 0, "the end, early");
  assert.equal(h.size, DATA.length, "the size still says the whole file");
  const streamed = await drain(h);
  assert.ok(
    streamed.equals(DATA.subarray(0, 4000)),
    `a stream ends at the cut too: ${streamed.length} bytes`,
  );
  assert.ok(
    (await drain(h, { start: 3500, end: 9000 })).equals(DATA.subarray(3500, 4000)),
    "a range across it",
  );
  assert.equal((await drain(h, { start: 5000 })).length, 0, "nothing past it");
});

test("faulty: after N bytes read, reads and streams fail with ENOSPC (or the code asked for)", async (t) => {
  const { dest } = await setup(t, { failAfterBytesRead: { bytes: 2500 } });
  const h = await dest.open(NAME, "files/data.bin");
  t.after(() => h.close());
  const buf = Buffer.alloc(2000);
  assert.equal(await h.read(buf, 0, 2000, 0), 2000);
  await assert.rejects(h.read(buf, 0, 2000, 2000), (e: unknown) => errnoCode(e) === "ENOSPC");
  await assert.rejects(drain(h), (e: unknown) => errnoCode(e) === "ENOSPC");
});

test("faulty: a stream crashes after N bytes: the reader got at most those, then an EIO error", async (t) => {
  const { dest } = await setup(t, { crashStreamsAfterBytes: 2500 });
  const h = await dest.open(NAME, "files/data.bin");
  t.after(() => h.close());
  const parts: Buffer[] = [];
  await assert.rejects(
    (async () => {
      for await (const c of h.stream({ highWaterMark: 1000 })) parts.push(c as Buffer);
    })(),
    (e: unknown) => errnoCode(e) === "EIO",
  );
  // What arrived is the file's start, never past the crash point (bytes still buffered when the
  // stream errors are lost, as on a real connection reset).
  const got = Buffer.concat(parts);
  assert.ok(got.length <= 2500 && got.equals(DATA.subarray(0, got.length)), `${got.length} bytes`);
  // Every stream crashes at its own byte 2500: a short range ends before it.
  assert.ok((await drain(h, { start: 100, end: 199 })).equals(DATA.subarray(100, 200)));
});

test("faulty: the Nth stream fails on its first read; latency changes no result", async (t) => {
  const { dest } = await setup(t, { fail: [{ op: "stream", nth: 1 }], latencyMs: 2 });
  const h = await dest.open(NAME, "files/data.bin");
  t.after(() => h.close());
  await assert.rejects(drain(h), (e: unknown) => errnoCode(e) === "EIO");
  assert.ok((await drain(h)).equals(DATA), "the second stream is whole");
  assert.equal(dest.calls.get("stream"), 2);
});

test("faulty: a failing lock is an error, never a lease", async (t) => {
  const { dest } = await setup(t, { fail: [{ op: "lock", nth: 1, code: "EACCES" }] });
  const { systemClock } = await import("../src/platform/clock.ts");
  await assert.rejects(
    dest.lock("data", "backup of set data", systemClock),
    (e: unknown) => errnoCode(e) === "EACCES",
  );
  const lease = await dest.lock("data", "backup of set data", systemClock);
  await lease.release();
});
