import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import type { Catalog } from "../src/catalog/catalog.ts";
import { memoryCatalog } from "../src/catalog/memory/memory-catalog.ts";
import { type Config, getSet, loadConfig } from "../src/config/load.ts";
import { planCopies } from "../src/copy/plan.ts";
import { BschedError } from "../src/core/errors.ts";
import { listBackups } from "../src/destination/backups.ts";
import type { Destination } from "../src/destination/destination.ts";
import { faulty } from "../src/destination/faulty.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { openDestination } from "../src/destination/open.ts";
import type { NotifyPayload } from "../src/notify/webhook.ts";
import { backupNow } from "../src/ops/backup-now.ts";
import type { OpEvent } from "../src/ops/context.ts";
import { copyNow } from "../src/ops/copy.ts";
import { systemClock } from "../src/platform/clock.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

/** No waiting between attempts: what a test's backoff is. */
const noWait = { attempts: 3, delaysMs: [0, 0] };

interface Copies {
  s: TestServer;
  config: () => Config;
  /** The folder of a destination, by name. */
  folder: (name: string) => string;
  /** A backup of set data made in this process (no copies), after writing `files` into the source. */
  backup: (files?: Record<string, string | Buffer>) => Promise<string>;
  dest: (name: string) => Destination;
}

/**
 * A server whose set `data` is copied to local destinations `usb` and `nas` (folders under the
 * test's folder, `nas` under a mount point `mnt` that a test may remove), each with the extra
 * YAML lines given.
 */
async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  opts: { mode?: "full" | "incremental"; setKeys?: string[]; usb?: string[]; nas?: string[] } = {},
): Promise<Copies> {
  const s = await makeServer({
    mode: opts.mode ?? "incremental",
    setKeys: ["copies: [usb, nas]", ...(opts.setKeys ?? [])],
  });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const folder = (name: string) =>
    name === "usb" ? path.join(s.dir, "usb", "Backup") : path.join(s.dir, "mnt", "nas");
  await fs.mkdir(path.join(s.dir, "usb"));
  await fs.mkdir(path.join(s.dir, "mnt"));
  const extra = (lines: string[] | undefined) => (lines ?? []).map((l) => `, ${l}`).join("");
  await fs.appendFile(
    s.config,
    `destinations:
  usb: { type: local, path: ${folder("usb")}${extra(opts.usb)} }
  nas: { type: local, path: ${folder("nas")}${extra(opts.nas)} }
`,
  );
  const config = () => loadConfig(s.config, () => undefined);
  let n = 0;
  return {
    s,
    config,
    folder,
    dest: (name) => {
      const c = config();
      return openDestination(c.destinations.get(name) as NonNullable<ReturnType<typeof c.destinations.get>>, {
        set: "data",
      });
    },
    async backup(files = { [`f${n++}.txt`]: `content ${n}\n` }) {
      for (const [f, body] of Object.entries(files)) await fs.writeFile(path.join(s.data, f), body);
      const c = config();
      const r = await backupNow(
        { config: c, clock: systemClock, progress: () => undefined },
        { set: getSet(c, "data"), copy: false },
      );
      return r.summary.name;
    },
  };
}

async function copy(
  c: Copies,
  opts: Partial<Parameters<typeof copyNow>[1]> = {},
  events: OpEvent[] = [],
  catalog?: Catalog,
) {
  const config = c.config();
  return copyNow(
    { config, clock: systemClock, progress: (e) => events.push(e), catalog },
    { set: getSet(config, "data"), retry: noWait, ...opts },
  );
}

async function published(folder: string): Promise<string[]> {
  return (await fs.readdir(folder).catch(() => [] as string[])).filter((n) => !n.startsWith(".")).sort();
}

test("plan: everything the destination lacks, oldest first; then nothing; a missing parent is sent before the rest", async (t) => {
  const c = await setup(t);
  const names = [await c.backup(), await c.backup(), await c.backup()];
  const from = new LocalDestination(c.s.backups);
  const usb = c.dest("usb");
  await usb.ready();
  const set = getSet(c.config(), "data");
  assert.deepEqual((await planCopies(from, usb, set)).send, names);
  const r = await copy(c, { to: ["usb"] });
  assert.deepEqual(
    r.copies.map((o) => [o.destination, o.ok, o.copied]),
    [["usb", true, names]],
  );
  assert.deepEqual(await published(c.folder("usb")), names);
  assert.deepEqual((await planCopies(from, usb, set)).send, [], "level: nothing to send");
  // The middle incremental lost there: it is sent again, and the newest counts as present.
  await usb.remove(names[1] as string);
  const p = await planCopies(from, usb, set);
  assert.deepEqual(p.send, [names[1]]);
  assert.deepEqual(p.present, [names[0], names[2]]);
  // A copy whose manifest was cut short is replaced by a whole one.
  await copy(c, { to: ["usb"] });
  const manifest = path.join(c.folder("usb"), names[0] as string, "manifest.json");
  await fs.truncate(manifest, 40);
  const q = await planCopies(from, usb, set);
  assert.deepEqual([q.send, q.replace], [[names[0]], [names[0]]]);
  const again = await copy(c, { to: ["usb"] });
  assert.deepEqual(again.copies[0]?.copied, [names[0]]);
  assert.deepEqual(
    await fs.readFile(manifest),
    await fs.readFile(path.join(c.s.backups, names[0] as string, "manifest.json")),
  );
});

test("plan: an incremental whose parent the destination lacks goes after its parent, never alone", async (t) => {
  const c = await setup(t);
  const [full, inc] = [await c.backup(), await c.backup()];
  const usb = c.dest("usb");
  await usb.ready();
  // Only the incremental is wanted: the plan sends its parent first all the same.
  const from = new LocalDestination(c.s.backups);
  const p = await planCopies(from, usb, getSet(c.config(), "data"));
  assert.deepEqual(p.send, [full, inc]);
  const events: OpEvent[] = [];
  await copy(c, { to: ["usb"] }, events);
  const order = events.flatMap((e) =>
    e.kind === "progress" && e.progress.current ? [e.progress.current.split("/")[0]] : [],
  );
  assert.deepEqual([...new Set(order)], [full, inc], "the parent's files went first");
  assert.ok(
    events.some(
      (e) => e.kind === "progress" && e.progress.phase === "copy" && e.progress.destination === "usb",
    ),
  );
});

test("plan: a backup the primary's retention removed is not sent", async (t) => {
  const c = await setup(t, { mode: "full", setKeys: ["keep: { last: 1 }"] });
  await c.backup();
  const second = await c.backup();
  assert.deepEqual(await published(c.s.backups), [second]);
  const r = await copy(c);
  assert.deepEqual(
    r.copies.map((o) => o.copied),
    [[second], [second]],
  );
});

test("copy: two destinations, read and size checks, a record per copied backup and per destination", async (t) => {
  const c = await setup(t, { nas: ["verify: size"] });
  const names = [await c.backup({ "a.db": Buffer.alloc(200_000, 3) }), await c.backup({ "b.txt": "b\n" })];
  const catalog = memoryCatalog();
  const usb = faulty(c.dest("usb"));
  const nas = faulty(c.dest("nas"));
  const r = await copy(c, { destinations: [usb, nas] }, [], catalog);
  assert.deepEqual(
    r.copies.map((o) => [o.destination, o.ok, o.copied, o.newest]),
    [
      ["usb", true, names, names[1]],
      ["nas", true, names, names[1]],
    ],
  );
  assert.deepEqual(r.warnings, []);
  // read: re-read through the destination; size: sizes only, no file read back.
  assert.ok((usb.calls.get("read") ?? 0) + (usb.calls.get("stream") ?? 0) > 0);
  assert.equal(nas.calls.get("stream") ?? 0, 0);
  const recs = catalog
    .backups("data")
    .map((b) => `${b.destination}:${b.name}`)
    .sort();
  assert.deepEqual(recs, [...names.map((n) => `nas:${n}`), ...names.map((n) => `usb:${n}`)].sort());
  assert.deepEqual(
    catalog
      .copies("data")
      .map((x) => [x.destination, x.ok, x.copied, x.newest, x.errorCode])
      .sort(),
    [
      ["nas", true, 2, names[1], null],
      ["usb", true, 2, names[1], null],
    ],
  );
  // The same files, byte for byte (their mtimes are the copy's own: a backup does not keep those).
  const contents = async (dir: string) =>
    [...(await snapshotTree(dir))].map(([p, r]) => [p, r.kind, r.sha256 ?? null]);
  for (const name of names) {
    assert.deepEqual(
      await contents(path.join(c.folder("nas"), name)),
      await contents(path.join(c.s.backups, name)),
    );
  }
});

test("copy: a destination whose disk is not mounted fails clearly at once; the other copy is done, the primary untouched", async (t) => {
  const c = await setup(t, { setKeys: ['notify: { webhook: "http://127.0.0.1:9/hook" }'] });
  const name = await c.backup();
  await fs.rm(path.join(c.s.dir, "mnt"), { recursive: true });
  const before = await snapshotTree(c.s.backups);
  const catalog = memoryCatalog();
  const events: OpEvent[] = [];
  const sent: NotifyPayload[] = [];
  const r = await copy(c, { notify: async (_s, p) => sent.push(p) }, events, catalog);
  assert.deepEqual(
    sent.map((p) => [p.event, p.destination, p.set]),
    [["copy_failed", "nas", "data"]],
    "one copy_failed notification (in notify.on's default), for nas",
  );
  assert.match(sent[0]?.error ?? "", /mnt/);
  const [usb, nas] = r.copies;
  assert.deepEqual([usb?.ok, usb?.copied], [true, [name]]);
  assert.equal(nas?.ok, false);
  assert.equal(nas?.code, "DESTINATION_MISSING");
  assert.equal(nas?.attempts, 1, "an unmounted disk is not retried within the run");
  assert.match(nas?.error ?? "", /mnt/);
  assert.equal(r.warnings.length, 1);
  assert.equal(r.warnings[0]?.code, "COPY_FAILED");
  assert.match(r.warnings[0]?.message ?? "", /copy of set data to nas failed.*bsched copy data --to nas/);
  assert.ok(events.some((e) => e.kind === "warning" && e.warning.code === "COPY_FAILED"));
  assert.deepEqual(await snapshotTree(c.s.backups), before, "the primary untouched");
  const rec = catalog.copies("data").find((x) => x.destination === "nas");
  assert.deepEqual([rec?.ok, rec?.errorCode, rec?.copied], [false, "DESTINATION_MISSING", 0]);
  assert.ok(rec?.errorHint);
});

test("copy: a full disk mid-copy leaves nothing listed nor staged there and is reported COPY_FAILED (DISK_FULL)", async (t) => {
  const c = await setup(t);
  await c.backup({ "a.db": Buffer.alloc(100_000, 1), "b.db": Buffer.alloc(100_000, 2) });
  const nas = faulty(c.dest("nas"), { fail: [{ op: "put", nth: 2, code: "ENOSPC", andAfter: true }] });
  const r = await copy(c, { destinations: [nas] });
  const o = r.copies.find((x) => x.destination === "nas");
  assert.equal(o?.ok, false);
  assert.equal(o?.code, "DISK_FULL");
  assert.equal(o?.attempts, 3, "retried, then reported");
  assert.deepEqual(await fs.readdir(c.folder("nas")), [], "no backup, no staging, no lock left");
  assert.equal(r.warnings[0]?.code, "COPY_FAILED");
  assert.equal(r.copies.find((x) => x.destination === "usb")?.ok, true);
});

test("copy: a stream that breaks mid-copy is retried after the backoff and the copy completes", async (t) => {
  const c = await setup(t);
  const name = await c.backup({ "big.db": Buffer.alloc(3_000_000, 9) });
  const plan = { crashStreamsAfterBytes: 1_000_000 } as { crashStreamsAfterBytes?: number };
  const from = faulty(new LocalDestination(c.s.backups), plan);
  const waits: number[] = [];
  const events: OpEvent[] = [];
  const r = await copy(
    c,
    {
      to: ["usb"],
      from,
      retry: { attempts: 3, delaysMs: [5_000, 30_000] },
      sleep: async (ms) => {
        waits.push(ms);
        delete plan.crashStreamsAfterBytes; // the link is back
      },
    },
    events,
  );
  assert.deepEqual(waits, [5_000]);
  assert.deepEqual([r.copies[0]?.ok, r.copies[0]?.copied, r.copies[0]?.attempts], [true, [name], 2]);
  assert.ok(events.some((e) => e.kind === "log" && /attempt 1 failed.*trying again in 5 s/.test(e.line)));
  assert.deepEqual(await published(c.folder("usb")), [name]);
});

test("copy: a copy that does not match its manifest is removed and the destination fails", async (t) => {
  const c = await setup(t);
  await c.backup({ "a.db": Buffer.alloc(3_000_000, 5) });
  // The destination hands back less than it was given (a storage losing bytes).
  const usb = faulty(c.dest("usb"), { truncateReadsAt: 1000, readsOf: /files\// });
  const r = await copy(c, { to: ["usb"], destinations: [usb] });
  assert.equal(r.copies[0]?.ok, false);
  assert.equal(r.copies[0]?.code, "COPY_FAILED");
  assert.match(r.copies[0]?.error ?? "", /does not match its manifest.*a\.db.*removed/);
  assert.deepEqual(await published(c.folder("usb")), []);
});

test("copy: verify size finds a stored file of the wrong size, removes that copy and fails the destination", async (t) => {
  const c = await setup(t, { nas: ["verify: size"] });
  await c.backup({ "a.db": Buffer.alloc(100_000, 5) });
  // A destination that stores one byte too many (what a size check is there to see).
  const nas = faulty(c.dest("nas"));
  const open = nas.open.bind(nas);
  nas.open = async (backup, file) => {
    const h = await open(backup, file);
    return file.startsWith("files/") ? { ...h, size: h.size + 1 } : h;
  };
  const r = await copy(c, { to: ["nas"], destinations: [nas] });
  assert.equal(r.copies[0]?.ok, false);
  assert.equal(r.copies[0]?.code, "COPY_FAILED");
  assert.match(r.copies[0]?.error ?? "", /files\/a\.db: 100001 bytes, the manifest says 100000.*removed/);
  assert.deepEqual(await published(c.folder("nas")), []);
});

test("copy: verify size from a tree listing (storedSizes): a file it leaves out or shows otherwise is opened; a file really the wrong size fails", async (t) => {
  const c = await setup(t, { nas: ["verify: size"] });
  await c.backup({ "a.db": Buffer.alloc(100_000, 5), "b.db": Buffer.alloc(2_000, 6), "c.db": "c" });
  const opened: string[] = [];
  const withListing = (lie: (sizes: Map<string, number>) => void, bigger?: string) => {
    const nas = faulty(c.dest("nas"));
    const open = nas.open.bind(nas);
    nas.open = async (backup, file) => {
      opened.push(file);
      const h = await open(backup, file);
      return file === bigger ? { ...h, size: h.size + 1 } : h;
    };
    // A listing, as a destination with storedSizes gives one (FaultyDestination has none of its own).
    (nas as Destination).storedSizes = async (backup: string) => {
      const sizes = new Map<string, number>();
      for (const f of ["a.db", "b.db", "c.db"]) {
        const h = await open(backup, `files/${f}`);
        sizes.set(`files/${f}`, h.size);
        await h.close();
      }
      const m = await open(backup, "manifest.json");
      sizes.set("manifest.json", m.size);
      await m.close();
      lie(sizes);
      return sizes;
    };
    return nas;
  };
  // The listing leaves a.db out and shows b.db a byte short: both opened, both right, the copy stands.
  let r = await copy(c, {
    to: ["nas"],
    destinations: [
      withListing((sizes) => {
        sizes.delete("files/a.db");
        sizes.set("files/b.db", 1_999);
      }),
    ],
  });
  assert.equal(r.copies[0]?.ok, true, r.copies[0]?.error);
  assert.deepEqual(opened.filter((f) => f.startsWith("files/")).sort(), ["files/a.db", "files/b.db"]);
  assert.equal((await published(c.folder("nas"))).length, 1);
  // A file the listing and the file itself both show a byte long: the copy is removed, the destination failed.
  await c.backup({ "d.db": "d" });
  await fs.rm(c.folder("nas"), { recursive: true, force: true });
  r = await copy(c, {
    to: ["nas"],
    destinations: [withListing((sizes) => sizes.set("files/c.db", 2), "files/c.db")],
  });
  assert.equal(r.copies[0]?.ok, false);
  assert.match(r.copies[0]?.error ?? "", /files\/c\.db: 2 bytes, the manifest says 1.*removed/);
});

test("copy: a backup of another set under the same name there is never touched, and the destination is reported behind", async (t) => {
  const c = await setup(t);
  const name = await c.backup();
  await copy(c, { to: ["usb"] });
  // Another server's set writes into the same folder under the same letter and name.
  const manifest = path.join(c.folder("usb"), name, "manifest.json");
  const forged = (await fs.readFile(manifest, "utf8")).replace('"set":"data"', '"set":"other"');
  assert.notEqual(forged, await fs.readFile(manifest, "utf8"));
  await fs.writeFile(manifest, forged);
  const r = await copy(c, { to: ["usb"] });
  assert.equal(r.copies[0]?.ok, false);
  assert.equal(r.copies[0]?.attempts, 1);
  assert.match(r.copies[0]?.error ?? "", /1 backup\(s\) not sent to usb: .*holds a backup of set other/);
  assert.match(r.copies[0]?.hint ?? "", /a folder \(or prefix\) of its own/);
  assert.equal(await fs.readFile(manifest, "utf8"), forged, "the other set's backup is untouched");
});

test("copy: cancelled mid-file, nothing is listed there and the lock is free", async (t) => {
  const c = await setup(t);
  await c.backup({ "big.db": Buffer.alloc(8_000_000, 4) });
  const abort = new AbortController();
  // A slow link, so the cancel lands mid-file.
  const usb = faulty(c.dest("usb"), { latencyMs: 5 });
  const from = faulty(new LocalDestination(c.s.backups), { latencyMs: 2 });
  const config = c.config();
  await assert.rejects(
    copyNow(
      {
        config,
        clock: systemClock,
        signal: abort.signal,
        progress: (e) => {
          if (e.kind === "progress" && e.progress.destination === "usb" && e.progress.files > 0)
            abort.abort();
        },
      },
      { set: getSet(config, "data"), to: ["usb"], destinations: [usb], from, retry: noWait },
    ),
    (e: unknown) => e instanceof BschedError && e.code === "CANCELLED",
  );
  assert.deepEqual(await fs.readdir(c.folder("usb")), [], "no staging, no lock");
  const lease = await c.dest("usb").lock("data", "test", systemClock);
  await lease.release();
});

/** `dest` with its staging's puts counted: how many run at once now, and at most. */
function countingPuts(dest: Destination): { now: number; most: number; files: string[] } {
  const n = { now: 0, most: 0, files: [] as string[] };
  const stage = dest.stage.bind(dest);
  dest.stage = async (backup) => {
    const s = await stage(backup);
    return {
      ...s,
      put: async (file, body, size) => {
        n.files.push(file);
        n.most = Math.max(n.most, ++n.now);
        try {
          return await s.put(file, body, size);
        } finally {
          n.now--;
        }
      },
    };
  };
  return n;
}

test("copy: several files in flight (transfers), one failing: nothing published or staged, the copy fails naming that file, COPY_FAILED", async (t) => {
  const c = await setup(t, { nas: ["transfers: 4"] });
  const big = (b: number) => Buffer.alloc(1_000_000, b);
  await c.backup({ "a.db": big(1), "b.db": big(2), "c.db": big(3), "d.db": big(4) });
  // A slow link, so the four are in flight together; c.db's put fails every time.
  const nas = faulty(c.dest("nas"), {
    latencyMs: 2,
    fail: [{ op: "put", nth: 1, on: /files\/c\.db$/, andAfter: true }],
  });
  const puts = countingPuts(nas);
  const r = await copy(c, { to: ["nas"], destinations: [nas] });
  const o = r.copies[0];
  assert.equal(o?.ok, false);
  assert.equal(o?.attempts, 3, "retried, then reported");
  assert.match(o?.error ?? "", /files\/c\.db/, "the failing file is named");
  assert.doesNotMatch(o?.error ?? "", /[abd]\.db/, "and no other");
  assert.equal(r.warnings[0]?.code, "COPY_FAILED");
  assert.ok(puts.most > 1, `files were sent side by side (at most ${puts.most} at once)`);
  assert.equal(puts.now, 0, "every put ended before the copy failed");
  assert.deepEqual(await fs.readdir(c.folder("nas")), [], "no backup, no staging, no lock left");
});

test("copy: transfers 3 sends up to three files at once, transfers 1 one at a time; both copies whole, byte for byte", async (t) => {
  const c = await setup(t, { usb: ["transfers: 3", "verify: read"], nas: ["transfers: 1"] });
  const files = Object.fromEntries(
    ["a", "b", "c", "d", "e"].map((x, i) => [`${x}.db`, Buffer.alloc(300_000 + i, i)]),
  );
  const name = await c.backup(files);
  const usb = faulty(c.dest("usb"), { latencyMs: 1 });
  const nas = faulty(c.dest("nas"), { latencyMs: 1 });
  const [u, n] = [countingPuts(usb), countingPuts(nas)];
  const r = await copy(c, { destinations: [usb, nas] });
  assert.deepEqual(
    r.copies.map((o) => [o.destination, o.ok, o.copied]),
    [
      ["usb", true, [name]],
      ["nas", true, [name]],
    ],
  );
  assert.ok(u.most > 1 && u.most <= 3, `usb: at most 3 at once (${u.most})`);
  assert.equal(n.most, 1, "nas: one at a time");
  assert.deepEqual([...u.files].sort(), [...n.files].sort(), "every file sent to each");
  for (const d of ["usb", "nas"]) {
    for (const [f, body] of Object.entries(files))
      assert.deepEqual(await fs.readFile(path.join(c.folder(d), name, "files", f)), body);
  }
});

test("copy: cancelled with several files in flight, every transfer stops, nothing is listed there and the lock is free", async (t) => {
  const c = await setup(t, { usb: ["transfers: 4"] });
  const big = (b: number) => Buffer.alloc(4_000_000, b);
  await c.backup({ "a.db": big(1), "b.db": big(2), "c.db": big(3), "d.db": big(4) });
  const abort = new AbortController();
  const usb = faulty(c.dest("usb"), { latencyMs: 5 });
  const puts = countingPuts(usb);
  const from = faulty(new LocalDestination(c.s.backups), { latencyMs: 2 });
  const config = c.config();
  let inFlightAtCancel = 0;
  await assert.rejects(
    copyNow(
      {
        config,
        clock: systemClock,
        signal: abort.signal,
        progress: (e) => {
          // Once bytes flow with several files begun: the cancel lands with them in flight.
          if (
            e.kind === "progress" &&
            e.progress.destination === "usb" &&
            e.progress.bytes > 0 &&
            puts.now > 1
          ) {
            inFlightAtCancel ||= puts.now;
            abort.abort();
          }
        },
      },
      { set: getSet(config, "data"), to: ["usb"], destinations: [usb], from, retry: noWait },
    ),
    (e: unknown) => e instanceof BschedError && e.code === "CANCELLED",
  );
  assert.ok(inFlightAtCancel > 1, `several in flight at the cancel (${inFlightAtCancel})`);
  assert.equal(puts.now, 0, "every put stopped");
  assert.deepEqual(await fs.readdir(c.folder("usb")), [], "no staging, no lock");
  const lease = await c.dest("usb").lock("data", "test", systemClock);
  await lease.release();
});

test("backup: cancelled during its copies, the backup stays published and recorded ok; nothing is listed on the destination", async (t) => {
  const c = await setup(t);
  await fs.writeFile(path.join(c.s.data, "big.db"), Buffer.alloc(8_000_000, 4));
  const catalog = memoryCatalog();
  const abort = new AbortController();
  const config = c.config();
  const usb = faulty(c.dest("usb"), { latencyMs: 5 });
  await assert.rejects(
    backupNow(
      {
        config,
        clock: systemClock,
        catalog,
        signal: abort.signal,
        progress: (e) => {
          if (e.kind === "progress" && e.progress.destination !== undefined && e.progress.files > 0)
            abort.abort();
        },
      },
      { set: getSet(config, "data"), copyTo: [usb], copyRetry: noWait },
    ),
    (e: unknown) => e instanceof BschedError && e.code === "CANCELLED",
  );
  const [run] = catalog.runs({ set: "data" });
  assert.equal(run?.status, "ok");
  assert.deepEqual(await published(c.s.backups), [run?.backup]);
  assert.deepEqual(await fs.readdir(c.folder("usb")).catch(() => []), []);
  assert.deepEqual(catalog.copies("data"), [], "no copy record for a cancelled copy");
});

test("retention per destination: its own keep, never a chain it needs, never another destination", async (t) => {
  const c = await setup(t, { usb: ["keep: { last: 1 }"] });
  const chain = [await c.backup(), await c.backup(), await c.backup()];
  const catalog = memoryCatalog();
  const r = await copy(c, {}, [], catalog);
  // usb keeps the newest state: the whole chain it needs.
  assert.deepEqual(await published(c.folder("usb")), chain);
  assert.deepEqual(r.copies[0]?.pruned?.removed, []);
  // A new full there: the older chain goes from usb only.
  const config = c.config();
  const full = (
    await backupNow(
      { config, clock: systemClock, progress: () => undefined },
      { set: getSet(config, "data"), mode: "full", copy: false },
    )
  ).summary.name;
  const r2 = await copy(c, {}, [], catalog);
  assert.deepEqual(await published(c.folder("usb")), [full]);
  assert.deepEqual([...(r2.copies[0]?.pruned?.removed ?? [])].sort(), chain);
  assert.deepEqual(await published(c.folder("nas")), [...chain, full]);
  assert.deepEqual(await published(c.s.backups), [...chain, full]);
  assert.deepEqual(
    catalog
      .backups("data")
      .filter((b) => b.destination === "usb")
      .map((b) => b.name),
    [full],
  );
});

test("backup: a destination down for two runs catches up on the third, oldest first, and its chain restores exactly", async (t) => {
  const c = await setup(t);
  const nasPlan: { fail?: { op: "ready"; nth: number; andAfter: boolean; code: string }[] } = {
    fail: [{ op: "ready", nth: 1, andAfter: true, code: "EHOSTDOWN" }],
  };
  const catalog = memoryCatalog();
  const names: string[] = [];
  const results = [];
  for (let i = 0; i < 3; i++) {
    if (i === 2) delete nasPlan.fail;
    await fs.writeFile(path.join(c.s.data, `f${i}.txt`), `run ${i}\n`);
    if (i === 1) await fs.rm(path.join(c.s.data, "f0.txt"));
    const config = c.config();
    const nas = faulty(c.dest("nas"), nasPlan);
    const r = await backupNow(
      { config, clock: systemClock, catalog, progress: () => undefined },
      { set: getSet(config, "data"), copyTo: [nas], copyRetry: noWait },
    );
    names.push(r.summary.name);
    results.push(r);
  }
  for (const r of results.slice(0, 2)) {
    assert.deepEqual(
      r.copies?.map((o) => [o.destination, o.ok]),
      [
        ["usb", true],
        ["nas", false],
      ],
    );
    assert.equal(r.copyWarnings?.[0]?.code, "COPY_FAILED");
    assert.equal(catalog.getRun(r.runId as number)?.status, "warnings");
  }
  assert.deepEqual(results[2]?.copies?.[1]?.copied, names, "the third run sent all three, oldest first");
  assert.equal(catalog.getRun(results[2]?.runId as number)?.status, "ok");
  assert.deepEqual(await published(c.folder("nas")), names);
  // The chain there restores on its own (no catalog, no primary): the source as it is now.
  const to = path.join(c.s.dir, "restored");
  const rr = await c.s.cli(["restore", "--from", path.join(c.folder("nas"), names[2] as string), "--to", to]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.deepEqual(diffTrees(await snapshotTree(c.s.data), await snapshotTree(to)), []);
});

test("copy of the compressed type: a chain copied with both checks restores from the copy alone", async (t) => {
  const c = await setup(t, { setKeys: ["type: compressed"], nas: ["verify: size"] });
  const names = [await c.backup({ "a.db": Buffer.alloc(300_000, 2) }), await c.backup({ "b.txt": "b\n" })];
  const r = await copy(c);
  assert.deepEqual(
    r.copies.map((o) => [o.destination, o.ok, o.copied]),
    [
      ["usb", true, names],
      ["nas", true, names],
    ],
  );
  for (const d of ["usb", "nas"]) {
    const to = path.join(c.s.dir, `restored-${d}`);
    const rr = await c.s.cli(["restore", "--from", path.join(c.folder(d), names[1] as string), "--to", to]);
    assert.equal(rr.code, 0, rr.stderr);
    assert.deepEqual(diffTrees(await snapshotTree(c.s.data), await snapshotTree(to)), [], d);
  }
});

test("listing a copy: every copied backup lists there whole, with its chain", async (t) => {
  const c = await setup(t);
  const names = [await c.backup(), await c.backup()];
  await copy(c, { to: ["nas"] });
  const l = await listBackups(c.dest("nas"), "D", "data");
  assert.deepEqual(
    l.backups.map((b) => [b.name, b.header.parent?.name ?? null]),
    [
      [names[0], null],
      [names[1], names[0]],
    ],
  );
  assert.deepEqual(l.incomplete, []);
});
