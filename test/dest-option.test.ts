import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { test } from "node:test";
import { loadConfig } from "../src/config/load.ts";
import { copyBackup } from "../src/copy/copy-backup.ts";
import type { Destination, ReadHandle } from "../src/destination/destination.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { restore } from "../src/ops/restore.ts";
import { setSecret } from "../src/ops/secrets.ts";
import { systemClock } from "../src/platform/clock.ts";
import { resolveSecret } from "../src/secrets/secrets.ts";
import { restoreOnFreshComputer } from "./helpers/fresh-restore.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

/**
 * `--dest NAME` on list, verify, restore and prune (issue 11, "What to build" 4), through the real
 * CLI, on `local` destinations (the remote kinds plug in through the same factory).
 */

/** A server whose set `data` has a full and two incrementals, copied to destination `usb`. */
async function withCopy(opts: { type?: "separate" | "compressed"; destKeys?: string } = {}) {
  const s = await makeServer({ prefix: "bsched-dest-", setKeys: [`type: ${opts.type ?? "separate"}`] });
  const usb = path.join(s.dir, "usb", "Backup");
  const gone = path.join(s.dir, "unmounted", "Backup");
  await fs.appendFile(
    s.config,
    `destinations:\n  usb: { type: local, path: ${usb}${opts.destKeys ?? ""} }\n  spare: { type: local, path: ${gone} }\n`,
  );
  await fs.writeFile(path.join(s.data, "a.db"), Buffer.alloc(300_000, 7));
  await fs.writeFile(path.join(s.data, "b.txt"), "b\n");
  await fs.mkdir(path.join(s.data, "sub"));
  await fs.writeFile(path.join(s.data, "sub", "c.txt"), "c\n");
  const full = await s.backup();
  await fs.writeFile(path.join(s.data, "b.txt"), "b changed\n");
  await fs.rm(path.join(s.data, "sub", "c.txt"));
  const inc1 = await s.backup();
  await fs.writeFile(path.join(s.data, "d.bin"), Buffer.alloc(2_000_000, 3));
  await fs.symlink("b.txt", path.join(s.data, "link"));
  const inc2 = await s.backup();
  assert.equal(inc2.parent, inc1.name);
  assert.equal(inc1.parent, full.name);
  const to = new LocalDestination(usb, { name: "usb" });
  await fs.mkdir(path.dirname(usb));
  await to.ready();
  for (const b of [full, inc1, inc2]) await copyBackup(new LocalDestination(s.backups), to, b.name);
  return { s, usb, names: [full.name, inc1.name, inc2.name] };
}

async function json(s: TestServer, args: string[]) {
  const r = await s.cli([...args, "--json"]);
  return { ...r, body: JSON.parse(r.stdout) };
}

test("list --dest: the backups on that destination, each marked whether the set's own folder holds it too", async (t) => {
  const { s, usb, names } = await withCopy();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  // The primary loses its newest: the copy still has it, and says the folder does not.
  await fs.rm(path.join(s.backups, names[2] as string), { recursive: true });
  const r = await json(s, ["list", "data", "--dest", "usb"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.body.map((b: { name: string }) => b.name),
    names,
  );
  assert.deepEqual(
    r.body.map((b: { inFolder: boolean }) => b.inFolder),
    [true, true, false],
  );
  assert.ok(r.body.every((b: { path: string; state: string }) => b.path.startsWith(usb) && b.state === "ok"));
  // Without a set: every set's backups on that destination.
  const all = await json(s, ["list", "--dest", "usb"]);
  assert.equal(all.body.length, 3);
  // `folder` is the set's own: what `list` shows without --dest.
  const own = await json(s, ["list", "data", "--dest", "folder"]);
  assert.deepEqual(
    own.body.map((b: { name: string }) => b.name),
    names.slice(0, 2),
  );
  assert.equal(own.body[0].inFolder, undefined);
  const text = await s.cli(["list", "data", "--dest", "usb"]);
  assert.match(text.stdout, /IN FOLDER/);
  assert.match(text.stderr, /backups on destination usb \(/);
});

test("--dest with an unknown name is a usage error listing the known ones; a destination whose disk is absent says so", async (t) => {
  const { s } = await withCopy();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  for (const cmd of [
    ["list", "data"],
    ["verify", "data"],
    ["restore", "data", "--to", path.join(s.dir, "out")],
    ["prune", "data"],
  ]) {
    const r = await json(s, [...cmd, "--dest", "nas"]);
    assert.equal(r.code, 2, `${cmd[0]}: ${r.stderr}`);
    assert.equal(r.body.error.code, "USAGE");
    assert.match(r.body.error.message, /unknown destination "nas"/);
    assert.match(r.body.error.hint, /known: folder, usb, spare/);

    const m = await json(s, [...cmd, "--dest", "spare"]);
    assert.equal(m.code, 1, `${cmd[0]}: ${m.stderr}`);
    assert.equal(m.body.error.code, "DESTINATION_MISSING");
    assert.match(m.body.error.message, /destination spare \(.*unmounted\/Backup\) does not exist/);
    assert.match(m.body.error.hint, /mounted/);
  }
  // Nothing was made where the disk should be.
  await assert.rejects(fs.stat(path.join(s.dir, "unmounted")), { code: "ENOENT" });
});

test("verify --dest re-reads the copy: whole, then a damaged file named on that destination", async (t) => {
  const { s, usb, names } = await withCopy();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const ok = await json(s, ["verify", "data", "--dest", "usb"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.body.backups, 3);
  assert.equal(ok.body.destination, "usb");
  assert.deepEqual(ok.body.problems, []);
  // Damage in the copy only: the copy's verify finds it, the folder's does not.
  const victim = path.join(usb, names[2] as string, "files", "d.bin");
  await fs.writeFile(victim, Buffer.alloc(2_000_000, 4));
  const bad = await s.cli(["verify", "data", "--dest", "usb", "--backup", names[2] as string]);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stdout, /damage: .*d\.bin/);
  assert.equal((await s.cli(["verify", "data"])).code, 0);
  // A backup the destination does not hold: named with the destination.
  await fs.rm(path.join(usb, names[2] as string), { recursive: true });
  const none = await json(s, ["verify", "data", "--dest", "usb", "--backup", names[2] as string]);
  assert.equal(none.body.error.code, "BACKUP_NOT_FOUND");
  assert.match(
    none.body.error.message,
    new RegExp(`backup ${names[2]} not found on destination usb \\(${usb}\\)`),
  );
  assert.match(none.body.error.hint, /bsched list data --dest usb/);
});

test("restore --dest: the newest state from the copy, even with the set's own folder gone; a broken chain there names the destination", async (t) => {
  const { s, usb, names } = await withCopy();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.rm(s.backups, { recursive: true });
  const out = path.join(s.dir, "out");
  const r = await json(s, ["restore", "data", "--dest", "usb", "--to", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.body.chain, names);
  assert.equal(r.body.destination, "usb");
  assert.equal(r.body.where, usb);
  assert.deepEqual(diffTrees(await snapshotTree(s.data), await snapshotTree(out)), []);
  // The middle of the chain is missing on the copy: the error says where.
  await fs.rm(path.join(usb, names[1] as string), { recursive: true });
  const broken = await json(s, ["restore", "data", "--dest", "usb", "--to", path.join(s.dir, "out2")]);
  assert.equal(broken.code, 1);
  assert.equal(broken.body.error.code, "CHAIN_BROKEN");
  assert.match(broken.body.error.message, /^on destination usb \(/);
  assert.match(broken.body.error.hint, /bsched copy data --to usb/);
  // The whole destination empty: nothing to restore there.
  await fs.rm(usb, { recursive: true });
  await fs.mkdir(usb);
  const empty = await json(s, ["restore", "data", "--dest", "usb", "--to", path.join(s.dir, "out3")]);
  assert.equal(empty.body.error.code, "BACKUP_NOT_FOUND");
  assert.match(empty.body.error.message, /set "data" has no complete backup on destination usb/);
});

test("prune --dest applies the destination's own keep there, and touches nothing elsewhere", async (t) => {
  const { s, usb, names } = await withCopy({ destKeys: ", keep: { last: 1 }" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const full2 = await s.backup(["--mode", "full"]);
  await copyBackup(new LocalDestination(s.backups), new LocalDestination(usb, { name: "usb" }), full2.name);
  const dry = await json(s, ["prune", "data", "--dest", "usb", "--dry-run"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.deepEqual(dry.body.keep, [full2.name]);
  const r = await json(s, ["prune", "data", "--dest", "usb"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.body.removed,
    [...names].reverse(),
    "newest first, a chain's children before its parent",
  );
  assert.deepEqual(
    (await fs.readdir(usb)).filter((n) => n.startsWith("D_")),
    [full2.name],
  );
  // The set's own folder is untouched, and the set itself has no keep.
  assert.equal((await fs.readdir(s.backups)).filter((n) => n.startsWith("D_")).length, 4);
  const own = await json(s, ["prune", "data"]);
  assert.equal(own.body.error.code, "USAGE");
});

for (const type of ["separate", "compressed"] as const) {
  test(`a fresh computer with only a config naming the destination restores the newest state exactly (${type}; no catalog, no local backups)`, async (t) => {
    const { s } = await withCopy({ type });
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    const fresh = await restoreOnFreshComputer(s, "usb");
    t.after(() => fs.rm(fresh.dir, { recursive: true, force: true }));
    assert.equal(fresh.result.code, 0, fresh.result.stderr);
    assert.equal(JSON.parse(fresh.result.stdout).chain.length, 3);
    assert.deepEqual(fresh.diffs, []);
    assert.ok(!fresh.stateAfter.some((n) => n.startsWith("catalog")), "no catalog made or needed");
    const cfg = await fs.readFile(fresh.config, "utf8");
    assert.ok(!cfg.includes(s.backups), "the fresh config does not name the old backup folder");
    assert.deepEqual(await fs.readdir(path.join(fresh.dir, "srv")), [], "no local backups made");
  });
}

test("a fresh computer gets the secret store and its key, nothing else of the state folder", async (t) => {
  const { s } = await withCopy();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const config = loadConfig(s.config, () => undefined);
  await setSecret({ state: config.state, name: "service", value: "pw-fresh-4711", clock: systemClock });
  await fs.writeFile(
    s.config,
    (await fs.readFile(s.config, "utf8")).replace(
      "server:\n",
      "server:\n  serviceLogin: { domain: CORP, user: svc-backup, password: secret:service }\n",
    ),
  );
  const fresh = await restoreOnFreshComputer(s, "usb");
  t.after(() => fs.rm(fresh.dir, { recursive: true, force: true }));
  assert.equal(fresh.result.code, 0, fresh.result.stderr);
  assert.deepEqual(fresh.diffs, []);
  assert.deepEqual(fresh.stateAfter, ["secret.key", "secrets.json"]);
  // The secret resolves there as it did on the old computer.
  const state = loadConfig(fresh.config, () => undefined).state;
  // Compared without printing: a secret never appears in a test's output, even when it fails.
  assert.ok(
    resolveSecret("secret:service", state, "server.serviceLogin.password") === "pw-fresh-4711",
    "the secret resolves to the value stored on the old computer",
  );
  assert.ok(!(await fs.readFile(fresh.config, "utf8")).includes("pw-fresh-4711"));
});

/** Counts the bytes read of each stored file through a destination. */
function counting(inner: Destination, reads: Map<string, number>): Destination {
  const add = (backup: string, file: string, n: number) => {
    const k = `${backup}/${file}`;
    reads.set(k, (reads.get(k) ?? 0) + n);
  };
  const handle = (backup: string, file: string, h: ReadHandle): ReadHandle => ({
    size: h.size,
    read: async (buffer, offset, length, position) => {
      const n = await h.read(buffer, offset, length, position);
      add(backup, file, n);
      return n;
    },
    stream: (opts) => {
      const s: Readable = h.stream(opts);
      s.on("data", (c: Buffer) => add(backup, file, c.length));
      return s;
    },
    close: () => h.close(),
  });
  return {
    name: inner.name,
    where: inner.where,
    locationOf: (b, f) => inner.locationOf(b, f),
    ready: () => inner.ready(),
    names: () => inner.names(),
    topFiles: (b) => inner.topFiles(b),
    open: async (b, f) => handle(b, f, await inner.open(b, f)),
    readSmall: async (b, f, max) => {
      const r = await inner.readSmall(b, f, max);
      if (r) add(b, f, r.length);
      return r;
    },
    stage: (b) => inner.stage(b),
    remove: (b) => inner.remove(b),
    removeLeftovers: (l) => inner.removeLeftovers(l),
    lock: (id, p, c) => inner.lock(id, p, c),
    space: () => inner.space(),
  };
}

for (const type of ["separate", "compressed"] as const) {
  test(`restoring a chain from a destination reads each stored byte once (${type})`, async (t) => {
    const { s, usb } = await withCopy({ type });
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    const reads = new Map<string, number>();
    const dest = counting(new LocalDestination(usb, { name: "usb" }), reads);
    const config = loadConfig(s.config, () => undefined);
    const set = config.sets.get("data");
    assert.ok(set);
    const out = path.join(s.dir, "out");
    const r = await restore({}, { set }, { to: out, destination: dest });
    assert.equal(r.chain.length, 3);
    assert.deepEqual(diffTrees(await snapshotTree(s.data), await snapshotTree(out)), []);
    for (const [file, n] of reads) {
      const size = (await fs.stat(path.join(usb, file))).size;
      // A self-extracting file's header (its first 16 KiB at most) is read apart from its payload;
      // a manifest's first line (one read of 64 KiB at most) when the destination is listed.
      const allowance = file.endsWith(".sh")
        ? 16384
        : file.endsWith("manifest.json")
          ? Math.min(size, 65536)
          : 0;
      assert.ok(n <= size + allowance, `${file}: ${n} bytes read of ${size}`);
    }
    assert.equal(
      [...reads.keys()].filter((k) => k.endsWith("manifest.json")).length,
      3,
      "each link's manifest",
    );
    if (type === "separate") {
      // The newest state's big files come from the backup that stored them, each read whole once.
      assert.ok([...reads.keys()].some((k) => k.endsWith("files/d.bin")));
      assert.ok([...reads.keys()].some((k) => k.endsWith("files/a.db")));
    }
  });
}
