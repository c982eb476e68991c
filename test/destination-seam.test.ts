import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { getSet, loadConfig } from "../src/config/load.ts";
import type { Destination, Lease, ReadHandle, Staging } from "../src/destination/destination.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { LoneFileDestination } from "../src/destination/local/lone-file.ts";
import { backupNow } from "../src/ops/backup-now.ts";
import { list } from "../src/ops/list.ts";
import { prune } from "../src/ops/prune.ts";
import { restore } from "../src/ops/restore.ts";
import { verify } from "../src/ops/verify.ts";
import type { Clock } from "../src/platform/clock.ts";
import { systemClock } from "../src/platform/clock.ts";
import { tempDir } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

/** A Destination that records which of its methods were called, and passes every call on. */
class Recording implements Destination {
  readonly calls: string[] = [];
  readonly name = "recording";
  readonly where: string;
  readonly #inner: LocalDestination;
  constructor(inner: LocalDestination) {
    this.#inner = inner;
    this.where = inner.where;
  }
  #on<T>(call: string, value: T): T {
    this.calls.push(call);
    return value;
  }
  locationOf(backup: string, file?: string): string {
    return this.#inner.locationOf(backup, file);
  }
  ready(): Promise<void> {
    return this.#on("ready", this.#inner.ready());
  }
  names(): Promise<string[]> {
    return this.#on("names", this.#inner.names());
  }
  topFiles(backup: string): Promise<{ name: string; size: number }[]> {
    return this.#on("topFiles", this.#inner.topFiles(backup));
  }
  open(backup: string, file: string): Promise<ReadHandle> {
    return this.#on(`open ${file.startsWith("files/") ? "files/…" : file}`, this.#inner.open(backup, file));
  }
  readSmall(backup: string, file: string, max: number): Promise<Buffer | undefined> {
    return this.#on("readSmall", this.#inner.readSmall(backup, file, max));
  }
  stage(backup: string): Promise<Staging> {
    return this.#on("stage", this.#inner.stage(backup));
  }
  remove(backup: string): Promise<void> {
    return this.#on("remove", this.#inner.remove(backup));
  }
  removeLeftovers(letter: string): Promise<string[]> {
    return this.#on("removeLeftovers", this.#inner.removeLeftovers(letter));
  }
  lock(setId: string, purpose: string, clock: Clock): Promise<Lease> {
    return this.#on("lock", this.#inner.lock(setId, purpose, clock));
  }
  space(): Promise<{ free: number; blockSize: number } | undefined> {
    return this.#on("space", this.#inner.space());
  }
}

for (const type of ["separate", "compressed"] as const) {
  test(`backup, list, verify, restore and prune go through the destination they are given, never the set's folder (${type})`, async (t) => {
    const s = await makeServer({
      prefix: "bsched-dest-seam-",
      setKeys: [`type: ${type}`, "keep: { last: 1 }"],
    });
    const elsewhere = await tempDir("bsched-dest-elsewhere-");
    t.after(async () => {
      await fs.rm(s.dir, { recursive: true, force: true });
      await fs.rm(elsewhere, { recursive: true, force: true });
    });
    await fs.writeFile(path.join(s.data, "small.txt"), "a small file");
    // Larger than a small file (128 KiB): read through open(), not readSmall().
    await fs.writeFile(path.join(s.data, "large.bin"), Buffer.alloc(300 * 1024, 7));
    const config = loadConfig(s.config, () => undefined);
    const set = getSet(config, "data");
    const ctx = { config, clock: systemClock, progress: () => undefined };
    const dest = new Recording(new LocalDestination(path.join(elsewhere, "Backup"), { anchor: elsewhere }));

    const full = await backupNow(ctx, { set, mode: "full", prune: false, destination: dest });
    await fs.writeFile(path.join(s.data, "small.txt"), "changed");
    const incr = await backupNow(ctx, { set, prune: false, destination: dest });
    assert.equal(incr.summary.mode, "incremental");
    assert.equal(incr.summary.parent, full.summary.name);
    assert.equal(incr.summary.path, path.join(elsewhere, "Backup", incr.summary.name));
    for (const call of ["ready", "lock", "removeLeftovers", "names", "space", "stage", "open manifest.json"])
      assert.ok(dest.calls.includes(call), `backup called ${call}: ${dest.calls.join(", ")}`);
    // Nothing of it in the set's own folder.
    const own = await fs.readdir(s.backups).catch(() => [] as string[]);
    assert.deepEqual(
      own.filter((n) => n.startsWith("D_")),
      [],
    );

    const listed = await list(ctx, set, { destination: dest });
    assert.deepEqual(
      listed.backups.map((b) => [b.name, b.state]),
      [
        [full.summary.name, "ok"],
        [incr.summary.name, "ok"],
      ],
    );

    dest.calls.length = 0;
    const checked = await verify(ctx, { set }, { destination: dest });
    assert.deepEqual(checked.problems, []);
    assert.equal(checked.backups, 2);
    assert.ok(checked.files >= 3, `files verified: ${checked.files}`);
    const reads = type === "separate" ? ["readSmall", "open files/…"] : [`open ${incr.summary.name}.sh`];
    for (const call of reads) assert.ok(dest.calls.includes(call), `verify read through ${call}`);

    dest.calls.length = 0;
    const to = path.join(s.dir, "restored");
    const r = await restore(ctx, { set }, { to, destination: dest });
    assert.deepEqual(r.chain, [full.summary.name, incr.summary.name]);
    assert.deepEqual(diffTrees(await snapshotTree(s.data), await snapshotTree(to)), []);
    for (const call of reads) assert.ok(dest.calls.includes(call), `restore read through ${call}`);

    // A new full: keep { last: 1 } then deletes the whole older chain, through remove().
    const newest = await backupNow(ctx, { set, mode: "full", prune: false, destination: dest });
    dest.calls.length = 0;
    const pruned = await prune(ctx, set, { destination: dest });
    assert.deepEqual(pruned.removed.sort(), [full.summary.name, incr.summary.name].sort());
    assert.equal(dest.calls.filter((c) => c === "remove").length, 2);
    const left = (await fs.readdir(path.join(elsewhere, "Backup"))).filter((n) => n.startsWith("D_"));
    assert.deepEqual(left, [newest.summary.name]);
  });
}

test("the readers and the operations reach backups only through a Destination (no node:fs, no raw backup-file reads)", async () => {
  const root = path.join(import.meta.dirname, "..", "src");
  const files = [
    "format/separate/reader.ts",
    "format/compressed/reader.ts",
    "format/compressed/header.ts",
    "restore/locate.ts",
    "verify/verify.ts",
    "retention/prune.ts",
    "backup/cadence.ts",
    "snapshot/manifest.ts",
    "catalog/reconcile.ts",
    ...(await fs.readdir(path.join(root, "ops"))).map((f) => `ops/${f}`),
  ];
  for (const f of files) {
    const text = await fs.readFile(path.join(root, f), "utf8");
    // reconcile.ts moves the catalog's own file aside with node:fs: only its backup reads count.
    if (f !== "catalog/reconcile.ts") assert.ok(!/from "node:fs/.test(text), `${f} imports node:fs`);
    const own = /\b(openRegular|readRegular|readRegularSmallSync|beneath|listFolder|assessFolder)\(/.exec(
      text,
    );
    assert.equal(own, null, `${f} reads backup files itself: ${own?.[0]}`);
  }
});

test("a self-extracting file found alone is a read-only, one-file destination: its .sh is the file, nothing else is there", async (t) => {
  const dir = await tempDir("bsched-dest-lone-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "copy.sh");
  await fs.writeFile(file, "#!/bin/sh\n# not really a backup\n");
  const lone = new LoneFileDestination(file);
  const name = "D_2026_12_02_01_17_32";
  assert.equal(lone.locationOf(name, `${name}.sh`), file, "messages name the file itself");
  const h = await lone.open(name, `${name}.sh`);
  try {
    const buf = Buffer.alloc(9);
    assert.equal(await h.read(buf, 0, 9, 0), 9);
    assert.equal(buf.toString(), "#!/bin/sh");
  } finally {
    await h.close();
  }
  await assert.rejects(lone.open(name, "manifest.json"), { code: "ENOENT" });
  await assert.rejects(lone.stage(name), { code: "USAGE" });
  await assert.rejects(lone.remove(name), { code: "USAGE" });
  assert.deepEqual(await lone.names(), []);
});
