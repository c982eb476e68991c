import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { DestinationSpec } from "../src/config/load.ts";
import { loadConfig } from "../src/config/load.ts";
import { openDestination } from "../src/destination/open.ts";
import { systemClock } from "../src/platform/clock.ts";
import { runCli } from "./helpers/cli.ts";
import { PAUSED_LINE } from "./helpers/paused-backup.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

const PAUSED_COPY = fileURLToPath(new URL("./helpers/paused-copy.ts", import.meta.url));

interface Site {
  s: TestServer;
  usb: string;
  nas: string;
  /** The folder holding `nas` (a mount point a test may take away). */
  mnt: string;
}

/** A server whose set `data` (incremental) is copied to two local destinations, `usb` and `nas`. */
async function site(t: { after: (fn: () => Promise<void>) => void }, setKeys: string[] = []): Promise<Site> {
  const s = await makeServer({ setKeys: ["copies: [usb, nas]", ...setKeys] });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const usb = path.join(s.dir, "usb", "Backup");
  const mnt = path.join(s.dir, "mnt");
  const nas = path.join(mnt, "nas");
  await fs.mkdir(path.dirname(usb));
  await fs.mkdir(mnt);
  await fs.appendFile(
    s.config,
    `destinations:\n  usb: { type: local, path: ${usb} }\n  nas: { type: local, path: ${nas}, verify: size }\n`,
  );
  return { s, usb, nas, mnt };
}

async function backupJson(s: TestServer, expect = 0) {
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, expect, r.stderr);
  return JSON.parse(r.stdout);
}

async function published(folder: string): Promise<string[]> {
  return (await fs.readdir(folder).catch(() => [] as string[])).filter((n) => !n.startsWith(".")).sort();
}

async function restoresExactly(s: TestServer, backup: string, label: string): Promise<void> {
  const to = path.join(s.dir, `restored-${label}`);
  const r = await s.cli(["restore", "--from", backup, "--to", to]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(diffTrees(await snapshotTree(s.data), await snapshotTree(to)), [], label);
}

test("bsched backup: a full and two incrementals, each copied to both destinations and checked; each copy restores alone", async (t) => {
  const { s, usb, nas } = await site(t);
  await fs.writeFile(path.join(s.data, "a.db"), Buffer.alloc(300_000, 1));
  await fs.writeFile(path.join(s.data, "b.txt"), "b\n");
  const names: string[] = [];
  for (let i = 0; i < 3; i++) {
    if (i === 1) await fs.writeFile(path.join(s.data, "b.txt"), "b changed\n");
    if (i === 2) await fs.rm(path.join(s.data, "a.db"));
    const j = await backupJson(s);
    names.push(j.name);
    assert.deepEqual(j.copies, [
      { destination: "usb", ok: true, copied: 1, newest: j.name },
      { destination: "nas", ok: true, copied: 1, newest: j.name },
    ]);
  }
  assert.deepEqual(await published(usb), names);
  assert.deepEqual(await published(nas), names);
  await restoresExactly(s, path.join(usb, names[2] as string), "usb");
  await restoresExactly(s, path.join(nas, names[2] as string), "nas");
  // The person's view: one line per copy on stdout.
  const text = await s.cli(["backup", "data"]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /copy to usb: sent 1 \(D_\S+\); newest there D_/);
  assert.match(text.stdout, /copy to nas: sent 1/);
  // Level already: bsched copy sends nothing.
  const level = await s.cli(["copy", "data"]);
  assert.equal(level.code, 0, level.stderr);
  assert.match(level.stdout, /copy to usb: already level/);
});

test("bsched backup/copy: a destination down for two backups (exit 3, COPY_FAILED naming it and the fix); bsched copy brings it level oldest first", async (t) => {
  const { s, usb, nas, mnt } = await site(t);
  await fs.rm(mnt, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < 2; i++) {
    await fs.writeFile(path.join(s.data, `f${i}.txt`), `run ${i}\n`);
    const r = await s.cli(["backup", "data", "--json"]);
    assert.equal(r.code, 3, r.stderr);
    const j = JSON.parse(r.stdout);
    names.push(j.name);
    const [u, n] = j.copies;
    assert.deepEqual(u, { destination: "usb", ok: true, copied: 1, newest: j.name });
    assert.equal(n.destination, "nas");
    assert.equal(n.ok, false);
    assert.equal(n.code, "DESTINATION_MISSING");
    assert.ok(n.hint, "a fix is named");
    assert.match(
      r.stderr,
      /warning: .*mnt.*copy of set data to nas failed.*bsched copy data --to nas.*\[COPY_FAILED\]/,
    );
  }
  assert.deepEqual(await published(usb), names, "the other copy is whole");
  assert.deepEqual(await published(s.backups), names, "the primary is whole");
  // The disk is back.
  await fs.mkdir(mnt);
  const r = await s.cli(["copy", "data", "--to", "nas"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `copy to nas: sent 2 (${names.join(", ")}); newest there ${names[1]}`);
  assert.deepEqual(await published(nas), names);
  await restoresExactly(s, path.join(nas, names[1] as string), "nas");
  // status/history see the run with its warning: the catalog's record of the failed backups.
  const h = await s.cli(["history", "data", "--json"]);
  assert.equal(h.code, 0, h.stderr);
  assert.ok(JSON.stringify(JSON.parse(h.stdout)).includes("COPY_FAILED"));
});

test("bsched copy: a destination locked by another run fails cleanly (LOCKED), then succeeds once free", async (t) => {
  const { s, usb } = await site(t);
  await fs.writeFile(path.join(s.data, "a.txt"), "a\n");
  const b = await s.cli(["backup", "data", "--json"]);
  assert.equal(b.code, 0, b.stderr);
  const name = JSON.parse(b.stdout).name;
  // Another holder of usb's lock for this set (a daemon's copy in progress).
  const config = loadConfig(s.config, () => undefined);
  const dest = openDestination(config.destinations.get("usb") as DestinationSpec, { set: "data" });
  await fs.rm(path.join(usb, name), { recursive: true });
  const lease = await dest.lock("data", "copy of set data to usb (a daemon)", systemClock);
  let r: Awaited<ReturnType<TestServer["cli"]>>;
  try {
    r = await s.cli(["copy", "data", "--to", "usb", "--attempts", "1", "--json"]);
  } finally {
    await lease.release();
  }
  assert.equal(r.code, 3, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.copies[0].code, "LOCKED");
  assert.match(j.copies[0].error, /locked by copy of set data to usb \(a daemon\)/);
  assert.match(r.stderr, /\[COPY_FAILED\]/);
  assert.deepEqual(await published(usb), []);
  const again = await s.cli(["copy", "data", "--to", "usb", "--json"]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout).copies, [
    { destination: "usb", ok: true, copied: 1, newest: name },
  ]);
});

test("bsched copy: an unknown destination, or the set's own folder, is bad usage (exit 2)", async (t) => {
  const { s } = await site(t);
  const r = await s.cli(["copy", "data", "--to", "nowhere"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown destination "nowhere".*\n.*hint: known destinations: usb, nas/);
  const a = await s.cli(["copy", "data", "--attempts", "0"]);
  assert.equal(a.code, 2);
});

test("bsched copy killed (-9) mid-copy: nothing listed there, and the next copy cleans up and completes", async (t) => {
  const { s, usb } = await site(t);
  for (const f of ["a.db", "b.db", "c.db"])
    await fs.writeFile(path.join(s.data, f), Buffer.alloc(200_000, f.charCodeAt(0)));
  const b = await s.cli(["backup", "data", "--json"]);
  assert.equal(b.code, 0, b.stderr);
  const name = JSON.parse(b.stdout).name;
  await fs.rm(usb, { recursive: true });
  await fs.mkdir(usb);
  const child = spawn(process.execPath, [PAUSED_COPY, s.config, "data", "2"], {
    cwd: s.dir,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const closed = new Promise((resolve) => child.on("close", (_c, sig) => resolve(sig)));
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (d) => {
      stderr += d;
      if (stderr.includes(PAUSED_LINE)) resolve();
    });
    child.on("close", () => reject(new Error(`copy ended before pausing: ${stderr}`)));
  });
  child.kill("SIGKILL");
  assert.equal(await closed, "SIGKILL");
  const left = await fs.readdir(usb);
  assert.ok(
    left.length > 0 && left.every((n) => n.startsWith(".")),
    `only a staging area and a lock: ${left}`,
  );
  assert.deepEqual(await published(usb), [], "nothing listed");
  const r = await s.cli(["copy", "data", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await fs.readdir(usb), [name], "the leftover removed, the copy whole");
  await restoresExactly(s, path.join(usb, name), "usb");
});

// A big sparse file: the copy streams it, whatever its size (docs/design.md "Copies").
const TIME = "/usr/bin/time";
const BIG = process.env.BSCHED_SKIP_LARGE ? 256 * 2 ** 20 : 2 * 2 ** 30;

test(`bsched copy of a ${BIG / 2 ** 20} MiB file stays under 150 MB peak memory`, {
  skip: existsSync(TIME) ? false : `${TIME} is absent (Debian package "time")`,
  timeout: 10 * 60_000,
}, async (t) => {
  const s = await makeServer({ mode: "full", setKeys: ["copies: [usb]"] });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const usb = path.join(s.dir, "usb");
  await fs.appendFile(s.config, `destinations:\n  usb: { type: local, path: ${usb}, verify: size }\n`);
  const fh = await fs.open(path.join(s.data, "disk.img"), "wx");
  await fh.truncate(BIG);
  await fh.write(Buffer.alloc(4096, 7), 0, 4096, BIG / 2);
  await fh.close();
  const b = await s.cli(["backup", "data", "--json"]);
  assert.equal(b.code, 0, b.stderr);
  const name = JSON.parse(b.stdout).name;
  await fs.rm(path.join(usb, name), { recursive: true });
  const started = performance.now();
  const r = await runCli(["copy", "data", "--config", s.config], { cwd: s.dir, wrap: [TIME, "-v"] });
  assert.equal(r.code, 0, r.stderr);
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]) / 1024;
  t.diagnostic(
    `copy of ${BIG / 2 ** 20} MiB: ${((performance.now() - started) / 1000).toFixed(1)} s, peak RSS ${rss.toFixed(1)} MB`,
  );
  assert.ok(rss < 150, `peak RSS ${rss} MB`);
  assert.equal((await fs.stat(path.join(usb, name, "files", "disk.img"))).size, BIG);
});
