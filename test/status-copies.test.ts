import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { test } from "node:test";
import { openCatalog } from "../src/catalog/reconcile.ts";
import type { DestinationSpec } from "../src/config/load.ts";
import { loadConfig } from "../src/config/load.ts";
import { copyBackup } from "../src/copy/copy-backup.ts";
import type { Destination } from "../src/destination/destination.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { openDestination } from "../src/destination/open.ts";
import type { CopyStatus } from "../src/ops/copy-status.ts";
import { status } from "../src/ops/status.ts";
import { systemClock } from "../src/platform/clock.ts";
import { runCli } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";

/**
 * `bsched status` per copy (issue 11, "What to build" 7): the newest backup on each copy
 * destination, how far behind the set's own folder, the last copy's result from the catalog;
 * a destination that is down or does not answer shows so, and never fails or stalls the rest.
 */

async function setUp() {
  const s = await makeServer({ prefix: "bsched-stcopy-" });
  const usb = path.join(s.dir, "usb");
  const nas = path.join(s.dir, "nas");
  const gone = path.join(s.dir, "unmounted", "Backup");
  const names: string[] = [];
  for (let i = 0; i < 4; i++) {
    await fs.writeFile(path.join(s.data, "f.txt"), `version ${i}\n`);
    names.push((await s.backup()).name);
  }
  for (const [folder, count] of [
    [usb, 2],
    [nas, 4],
  ] as const) {
    const to = new LocalDestination(folder);
    await to.ready();
    for (const n of names.slice(0, count)) await copyBackup(new LocalDestination(s.backups), to, n);
  }
  // The copies are named only now: whatever `backup` does with copies is not what is tested here.
  const text = await fs.readFile(s.config, "utf8");
  await fs.writeFile(
    s.config,
    `${text.replace("    frequency: now\n", "    frequency: now\n    copies: [usb, nas, gone]\n")}destinations:
  usb: { type: local, path: ${usb} }
  nas: { type: local, path: ${nas} }
  gone: { type: local, path: ${gone} }
`,
  );
  const config = loadConfig(s.config, () => undefined);
  const catalog = openCatalog(config);
  try {
    catalog.putCopy({
      set: "data",
      destination: "usb",
      at: "2026-12-01T04:00:10.000Z",
      ok: true,
      copied: 1,
      newest: names[1] as string,
      error: null,
      errorCode: null,
      errorHint: null,
    });
    catalog.putCopy({
      set: "data",
      destination: "nas",
      at: "2026-12-02T04:00:30.000Z",
      ok: false,
      copied: 0,
      newest: names[3] as string,
      error: "destination nas (//files/backups): the password of CORP\\svc-backup was refused",
      errorCode: "AUTH_FAILED",
      errorHint: "set the right one with `bsched secret set service`",
    });
  } finally {
    catalog.close();
  }
  return { s, names, usb, nas, gone };
}

const byName = (copies: CopyStatus[], name: string) => {
  const c = copies.find((x) => x.destination === name);
  assert.ok(c, `no status for copy ${name}`);
  return c;
};

test("status --json: per copy the newest backup there, how far behind, the last copy's result; a missing disk never fails the rest", async (t) => {
  const { s, names, gone } = await setUp();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const r = await s.cli(["status", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const set = JSON.parse(r.stdout).sets[0];
  assert.equal(set.copies.length, 3);
  assert.deepEqual(
    set.copies.map((c: CopyStatus) => c.destination),
    ["usb", "nas", "gone"],
    "in the config's order",
  );
  const usb = byName(set.copies, "usb");
  assert.equal(usb.newest, names[1]);
  assert.equal(usb.behind, 2);
  assert.equal(usb.count, 2);
  assert.equal(usb.seen, "destination");
  assert.deepEqual(usb.lastCopy, { at: "2026-12-01T04:00:10.000Z", ok: true, copied: 1 });
  assert.equal(usb.error, undefined);

  const nas = byName(set.copies, "nas");
  assert.equal(nas.newest, names[3]);
  assert.equal(nas.behind, 0);
  assert.equal(nas.lastCopy?.ok, false);
  assert.equal(nas.lastCopy?.code, "AUTH_FAILED");
  assert.match(nas.lastCopy?.hint ?? "", /bsched secret set service/);

  const g = byName(set.copies, "gone");
  assert.equal(g.where, gone);
  assert.equal(g.errorCode, "DESTINATION_MISSING");
  assert.match(g.error ?? "", /destination gone .* does not exist/);
  assert.match(g.errorHint ?? "", /mounted/);
  assert.equal(g.newest, null);
  assert.equal(g.behind, null, "never copied and not listed: unknown");
  assert.equal(g.lastCopy, null);
  // The set's own part is as before.
  assert.equal(set.backups.count, 4);

  const text = await s.cli(["status"]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    new RegExp(`copy usb: +newest ${names[1]}, 2 backup\\(s\\) behind the folder; last copy ok at`),
  );
  assert.match(
    text.stdout,
    /copy nas: +newest .*, up to date; last copy FAILED at .* \[AUTH_FAILED\]: .*refused/,
  );
  assert.match(text.stdout, /\n +hint: set the right one with `bsched secret set service`/);
  assert.match(
    text.stdout,
    /copy gone: +DESTINATION_MISSING: destination gone .* does not exist; never copied/,
  );
});

test("status --offline: only the catalog's view, no destination contacted", async (t) => {
  const { s, names } = await setUp();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  // Even a destination emptied since is shown as the catalog last saw it.
  await fs.rm(path.join(s.dir, "usb"), { recursive: true });
  const r = await s.cli(["status", "--json", "--offline"]);
  assert.equal(r.code, 0, r.stderr);
  const copies: CopyStatus[] = JSON.parse(r.stdout).sets[0].copies;
  assert.ok(copies.every((c) => c.seen === "catalog" && c.error === undefined && c.count === null));
  assert.equal(byName(copies, "usb").newest, names[1]);
  assert.equal(byName(copies, "usb").behind, 2);
  assert.equal(byName(copies, "nas").behind, 0);
  assert.equal(byName(copies, "gone").newest, null);
  const text = await s.cli(["status", "--offline"]);
  assert.match(text.stdout, /copy usb: +newest \S+, 2 backup\(s\) behind the folder \(catalog\)/);
});

test("status: a destination that never answers shows unreachable after its timeout, the others listed; it is closed after", async (t) => {
  const { s, names } = await setUp();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const config = loadConfig(s.config, () => undefined);
  let closed = 0;
  // nas hangs on every call, as a server that accepts connections and never answers.
  const hanging = (spec: DestinationSpec): Destination => {
    const inner = openDestination(spec);
    const never = () => new Promise<never>(() => undefined);
    return Object.assign(Object.create(null), {
      name: inner.name,
      where: inner.where,
      locationOf: inner.locationOf.bind(inner),
      names: never,
      topFiles: never,
      open: never,
      readSmall: never,
      close: async () => {
        closed++;
      },
    }) as Destination;
  };
  const open = (spec: DestinationSpec) => (spec.name === "nas" ? hanging(spec) : openDestination(spec));
  // Long enough for the real local destination to answer on a loaded machine; the hanging one waits it out.
  const r = await status({ config, clock: systemClock }, { timeoutMs: 5000, open });
  const copies = r.sets[0]?.copies ?? [];
  const nas = byName(copies, "nas");
  assert.equal(nas.errorCode, "UNREACHABLE");
  assert.match(nas.error ?? "", /destination nas \(.*\) did not answer in 5 s/);
  // Not listed: the catalog's view stands in, said so.
  assert.equal(nas.seen, "catalog");
  assert.equal(nas.newest, names[3]);
  assert.equal(nas.lastCopy?.code, "AUTH_FAILED");
  const usb = byName(copies, "usb");
  assert.equal(usb.seen, "destination");
  assert.equal(usb.behind, 2);
  assert.equal(closed, 1, "the destination was closed once");
});

test("status: a destination that cannot even be made (a config it refuses) shows why, the others listed", async (t) => {
  const { s } = await setUp();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const config = loadConfig(s.config, () => undefined);
  const open = (spec: DestinationSpec) => {
    if (spec.name === "usb") throw new Error("type usb-3 is not known here");
    return openDestination(spec);
  };
  const r = await status({ config, clock: systemClock }, { open });
  const copies = r.sets[0]?.copies ?? [];
  assert.match(byName(copies, "usb").error ?? "", /destination usb \(.*\): type usb-3 is not known here/);
  assert.equal(byName(copies, "nas").seen, "destination");
});

test("status: the same destination copied to by two sets is opened once, and each set sees its own backups there", async (t) => {
  const { s, names, usb } = await setUp();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const text = await fs.readFile(s.config, "utf8");
  await fs.writeFile(
    s.config,
    text.replace(
      "destinations:",
      "  other:\n    letter: O\n    source: Other\n    frequency: now\n    copies: [usb]\ndestinations:",
    ),
  );
  const config = loadConfig(s.config, () => undefined);
  let opened = 0;
  const open = (spec: DestinationSpec) => {
    if (spec.name === "usb") opened++;
    return openDestination(spec);
  };
  const r = await status({ config, clock: systemClock }, { open });
  assert.equal(opened, 1);
  const other = r.sets.find((x) => x.set === "other");
  assert.deepEqual(
    other?.copies.map((c) => [c.destination, c.newest, c.behind]),
    [["usb", null, 0]],
  );
  assert.equal(byName(r.sets[0]?.copies ?? [], "usb").newest, names[1]);
  assert.ok((await fs.readdir(usb)).length >= 2);
});

test("status through the CLI: an SFTP server that accepts connections and never answers shows unreachable (as a copy, and as a set's own folder), and the command ends", async (t) => {
  const s = await makeServer({ prefix: "bsched-stmute-" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const probe: DestinationSpec = {
    name: "vault",
    state: s.dir,
    config: {
      type: "sftp",
      host: "127.0.0.1",
      port: 22,
      user: "backup",
      hostKey: `SHA256:${"A".repeat(43)}`,
      path: "/srv/backups",
      verify: "read",
    },
  };
  try {
    openDestination(probe);
  } catch (e) {
    // Until the sftp destination is built on this branch (issue 11, built in parallel).
    t.skip(`the sftp destination is not available here: ${(e as Error).message}`);
    return;
  }
  const sockets = new Set<import("node:net").Socket>();
  const mute = createServer((c) => {
    sockets.add(c);
    c.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => mute.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const c of sockets) c.destroy();
    mute.close();
  });
  const port = (mute.address() as import("node:net").AddressInfo).port;
  await fs.writeFile(path.join(s.data, "f.txt"), "x\n");
  await s.backup();
  const text = await fs.readFile(s.config, "utf8");
  const password = "pw-never-shown-4711";
  await fs.writeFile(
    s.config,
    `${text.replace("    frequency: now\n", "    frequency: now\n    copies: [vault]\n")}  remote:
    letter: R
    source: Remote
    folder: vault
    mode: incremental
    frequency: now
destinations:
  vault: { type: sftp, host: 127.0.0.1, port: ${port}, user: backup, password: ${password}, hostKey: "SHA256:${"A".repeat(43)}", path: /srv/backups }
`,
  );
  // Killed (code null) if it hung: the test then fails instead of blocking the suite.
  const r = await runCli(["status", "--json", "--timeout", "2", "--config", s.config], {
    cwd: s.dir,
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, r.stderr);
  const vault = byName(JSON.parse(r.stdout).sets[0].copies, "vault");
  assert.equal(vault.errorCode, "UNREACHABLE");
  assert.match(
    vault.error ?? "",
    /destination vault \(sftp:\/\/backup@127\.0\.0\.1:\d+\/srv\/backups\) did not answer in 2 s/,
  );
  // A set whose own folder is there: its backups shown unreachable, its status given all the same.
  const remote = JSON.parse(r.stdout).sets.find((x: { set: string }) => x.set === "remote");
  assert.equal(remote.backups.errorCode, "UNREACHABLE");
  assert.equal(remote.chain, null);
  assert.ok(sockets.size >= 1, "it did try to connect");
  assert.ok(!`${r.stdout}${r.stderr}`.includes(password), "the password is never shown");
});
