import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import type { DestinationSpec } from "../src/config/load.ts";
import { copyBackup } from "../src/copy/copy-backup.ts";
import type { Destination } from "../src/destination/destination.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { openDestination } from "../src/destination/open.ts";
import { systemClock } from "../src/platform/clock.ts";
import { deletingName } from "../src/platform/names.ts";
import { isBackupName } from "../src/snapshot/naming.ts";
import { runCli, tempDir } from "./helpers/cli.ts";
import { type DestinationUnderTest, destinationContract } from "./helpers/destination-contract.ts";
import { freePort } from "./helpers/servers/need.ts";
import { makeKey, type SshdServer, sshdMissing, startSshd } from "./helpers/servers/sshd.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

/**
 * The `sftp` destination against a real OpenSSH sshd on loopback (test/helpers/servers/sshd.ts):
 * the Destination contract, then what goes wrong with a remote server (host key, credentials,
 * the server down or killed mid-transfer).
 */
const missing = sshdMissing();

let server: SshdServer;
let state: string;
let cases = 0;

before(async () => {
  if (missing) return;
  server = await startSshd({ password: true });
  state = await tempDir("bsched-sftp-state-");
});

after(async () => {
  await server?.close();
});

/** A destination spec on the test server; `over` replaces any key (a wrong password, another host key). */
export function sftpSpec(s: SshdServer, sub: string, over: Record<string, unknown> = {}): DestinationSpec {
  return {
    name: "vault",
    state,
    config: {
      type: "sftp",
      host: s.host,
      port: s.port,
      user: s.user,
      privateKey: s.privateKeyFile,
      hostKey: s.hostKeyFingerprint,
      path: path.posix.join(s.dir, sub),
      verify: "read",
      ...over,
    } as DestinationSpec["config"],
  };
}

async function fresh(): Promise<DestinationUnderTest & { folder: string }> {
  const sub = `case-${++cases}`;
  const folder = path.join(server.dir, sub);
  const dest = openDestination(sftpSpec(server, sub));
  return {
    dest,
    folder,
    cleanup: () => fs.rm(folder, { recursive: true, force: true }),
    // The server's folder is on this machine: leave what a remove killed half-way leaves.
    async crashDuringRemove(backup) {
      const doomed = path.join(folder, deletingName(backup));
      await fs.rename(path.join(folder, backup), doomed);
      await fs.rm(path.join(doomed, "manifest.json"));
    },
  };
}

/** `code` and the whole text (message and hint) of a rejection. */
async function failure(p: Promise<unknown>): Promise<{ code: string; text: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { code?: string; hint?: string };
    return { code: String(err.code), text: `${err.message}\n${err.hint ?? ""}` };
  }
  assert.fail("expected a failure");
}

async function withDest<T>(spec: DestinationSpec, fn: (d: Destination) => Promise<T>): Promise<T> {
  const d = openDestination(spec);
  try {
    return await fn(d);
  } finally {
    await d.close?.();
  }
}

const backupsOn = async (d: Destination) => (await d.names()).filter((n) => isBackupName(n)).sort();

if (missing) {
  test("sftp destination", { skip: missing }, () => undefined);
} else {
  destinationContract("sftp", fresh);

  test("sftp: a host key other than the pinned one is refused, naming both; nothing is written", async () => {
    const other = await makeKey(path.join(await tempDir("bsched-otherkey-"), "k"));
    const { fingerprintOf } = await import("./helpers/servers/sshd.ts");
    const pinned = fingerprintOf(other);
    const f = await failure(withDest(sftpSpec(server, "hostkey", { hostKey: pinned }), (d) => d.ready()));
    assert.equal(f.code, "HOST_KEY_MISMATCH", f.text);
    assert.match(f.text, /destination vault/);
    assert.ok(f.text.includes(server.hostKeyFingerprint), "names the key offered");
    assert.ok(f.text.includes(pinned), "names the key pinned");
    assert.match(f.text, /destinations\.vault\.hostKey/, "says how to fix it");
    await assert.rejects(fs.stat(path.join(server.dir, "hostkey")), "nothing made on the server");
  });

  test("sftp: a password login works; a wrong password is AUTH_FAILED without the password", async () => {
    const good = server.password as string;
    await withDest(sftpSpec(server, "pw", { privateKey: undefined, password: good }), async (d) => {
      await d.ready();
      assert.deepEqual(await backupsOn(d), []);
    });
    const wrong = `${good}-wrong`;
    const f = await failure(
      withDest(sftpSpec(server, "pw", { privateKey: undefined, password: wrong }), (d) => d.names()),
    );
    assert.equal(f.code, "AUTH_FAILED", f.text);
    assert.match(f.text, /destination vault/);
    assert.ok(f.text.includes(server.user), "names the user");
    assert.match(f.text, /password/, "says what to check");
    assert.ok(!f.text.includes(wrong) && !f.text.includes(good), "never the password");
  });

  test("sftp: a key the server does not accept is AUTH_FAILED", async () => {
    const key = path.join(await tempDir("bsched-wrongkey-"), "id");
    await makeKey(key);
    const f = await failure(withDest(sftpSpec(server, "key", { privateKey: key }), (d) => d.names()));
    assert.equal(f.code, "AUTH_FAILED", f.text);
    assert.ok(f.text.includes("destination vault") && f.text.includes(`user ${server.user}`), f.text);
    assert.match(f.text, /privateKey/);
  });

  test("sftp: nothing listening is UNREACHABLE naming host:port", async () => {
    const port = await freePort();
    const f = await failure(withDest(sftpSpec(server, "down", { port }), (d) => d.names()));
    assert.equal(f.code, "UNREACHABLE", f.text);
    assert.ok(f.text.includes(`127.0.0.1:${port}`), f.text);
  });

  /** A project folder with a config whose set `data` has its `folder:` on the server (`extra`: more YAML). */
  async function project(sub: string, setKeys = "", s = server): Promise<{ dir: string; data: string }> {
    const dir = await tempDir("bsched-sftp-cli-");
    const data = path.join(dir, "srv", "Data");
    await fs.mkdir(data, { recursive: true });
    const yaml = [
      "server:",
      `  root: ${JSON.stringify(path.join(dir, "srv"))}`,
      "  backupFolder: Backup",
      "  timezone: UTC",
      "destinations:",
      "  vault:",
      "    type: sftp",
      `    host: ${s.host}`,
      `    port: ${s.port}`,
      `    user: ${s.user}`,
      `    privateKey: ${JSON.stringify(s.privateKeyFile)}`,
      `    hostKey: "${s.hostKeyFingerprint}"`,
      `    path: ${JSON.stringify(path.posix.join(s.dir, sub))}`,
      "sets:",
      "  data:",
      "    letter: D",
      "    source: Data",
      "    folder: vault",
      "    frequency: now",
      setKeys,
    ].join("\n");
    await fs.writeFile(path.join(dir, "bsched.yaml"), `${yaml}\n`);
    return { dir, data };
  }

  test("sftp: backup, list, verify and restore through the CLI with the set's folder on the server", async () => {
    const { dir, data } = await project("cli", "    mode: incremental");
    await fs.mkdir(path.join(data, "sub", "empty"), { recursive: true });
    await fs.writeFile(path.join(data, "cardholders.db"), Buffer.alloc(3 * 1024 * 1024, 7));
    await fs.writeFile(path.join(data, "sub", "é name.txt"), "unicode");
    const first = await runCli(["backup", "data", "--json"], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    await fs.writeFile(path.join(data, "sub", "new.txt"), "added after the full");
    const second = await runCli(["backup", "data", "--json"], { cwd: dir });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(JSON.parse(second.stdout).mode, "incremental");

    const list = await runCli(["list", "--json"], { cwd: dir });
    assert.equal(list.code, 0, list.stderr);
    const names = JSON.parse(list.stdout).map((x: { name: string }) => x.name);
    assert.equal(names.length, 2);
    // The layout on the server is a local folder's: browsable and restorable by hand with `sftp`.
    const folder = path.join(server.dir, "cli");
    assert.deepEqual(
      (await fs.readdir(folder)).filter((n) => !n.startsWith(".bsched-")).sort(),
      names.sort(),
    );
    for (const n of names) await fs.access(path.join(folder, n, "manifest.json"));
    await fs.access(path.join(folder, names[0], "files", "cardholders.db"));

    const verify = await runCli(["verify", "data"], { cwd: dir });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const out = path.join(dir, "out");
    const restore = await runCli(["restore", "data", "--to", out], { cwd: dir });
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(diffTrees(await snapshotTree(data), await snapshotTree(out)), []);
    // The local scratch the writers used is gone.
    const scratch = path.join(dir, "srv", ".bsched", "scratch", "vault");
    assert.deepEqual(await fs.readdir(scratch).catch(() => []), []);
  });

  test("sftp: the server killed in the middle of a large put: a clear error, nothing listed, then the copy succeeds", async (t) => {
    const s = await startSshd();
    t.after(() => s.close());
    const { dir, data } = await project("unused", "", s);
    const big = Buffer.alloc(48 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    await fs.writeFile(path.join(data, "big.bin"), big);
    const b = await runCli(["backup", "data", "--json"], { cwd: dir, env: {} });
    // `folder: vault` made it on `s`; copy it from there into a second folder of the same server.
    assert.equal(b.code, 0, b.stderr);
    const name = JSON.parse(b.stdout).name as string;
    const from = new LocalDestination(path.join(s.dir, "unused"));
    const spec = { ...sftpSpec(s, "copy"), name: "vault" };
    const to = openDestination(spec);
    t.after(() => to.close?.());
    await to.ready();
    let sent = 0;
    let killed: Promise<void> | undefined;
    const f = await failure(
      copyBackup(from, to, name, {
        onBytes(n) {
          sent += n;
          if (sent > 8 * 1024 * 1024) killed ??= s.stop();
        },
      }),
    );
    await killed;
    assert.ok(killed, "the server was stopped during the put");
    assert.equal(f.code, "UNREACHABLE", f.text);
    assert.match(f.text, /destination vault: lost the connection to 127\.0\.0\.1:\d+/);
    await s.restart();
    assert.deepEqual(await backupsOn(to), [], "nothing listed after the crash (the destination reconnects)");
    const left = await to.removeLeftovers("D");
    assert.ok(
      left.every((n) => n.includes(name) && !isBackupName(n)),
      left.join(", "),
    );
    assert.deepEqual(await to.names(), [], "nothing left at all");
    await copyBackup(from, to, name);
    assert.deepEqual(await backupsOn(to), [name]);
    const copied = await fs.readFile(path.join(s.dir, "copy", name, "files", "big.bin"));
    const sha = (x: Buffer) => createHash("sha256").update(x).digest("hex");
    assert.equal(sha(copied), sha(big));
  });

  test("sftp: a copy with transfers 3 sends its files side by side over connections of their own; the copy is whole, byte for byte", async (t) => {
    const { dir, data } = await project("lanes-src");
    const bodies = [1, 2, 3, 4, 5].map((i) => Buffer.alloc(700_000 + i, i));
    for (const [i, b] of bodies.entries()) await fs.writeFile(path.join(data, `f${i}.db`), b);
    const b = await runCli(["backup", "data", "--json"], { cwd: dir, env: {} });
    assert.equal(b.code, 0, b.stderr);
    const name = JSON.parse(b.stdout).name as string;
    const from = new LocalDestination(path.join(server.dir, "lanes-src"));
    const to = openDestination(sftpSpec(server, "lanes", { transfers: 3 }));
    t.after(() => to.close?.());
    await to.ready();
    const started: string[] = [];
    // Connections to the server open now (IPv4 loopback: /proc/net/tcp, remote port, ESTABLISHED).
    const port = server.port.toString(16).toUpperCase().padStart(4, "0");
    const connections = () =>
      readFileSync("/proc/net/tcp", "utf8")
        .split("\n")
        .filter((l) => l.trim().split(/\s+/)[2]?.endsWith(`:${port}`) && l.trim().split(/\s+/)[3] === "01")
        .length;
    let most = 0;
    await copyBackup(from, to, name, {
      transfers: 3,
      onFile: (f) => started.push(f),
      onBytes: () => {
        most = Math.max(most, connections());
      },
    });
    assert.equal(started.length, 5);
    assert.ok(most >= 3, `three connections at once at least (lanes and the session): ${most}`);
    assert.deepEqual(await backupsOn(to), [name]);
    for (const [i, body] of bodies.entries()) {
      const copied = await fs.readFile(path.join(server.dir, "lanes", name, "files", `f${i}.db`));
      assert.ok(copied.equals(body), `f${i}.db`);
    }
  });

  test("sftp: a run lock whose lease ran out is taken over; a live one is not", async (t) => {
    const u = await fresh();
    t.after(async () => {
      await u.dest.close?.();
      await u.cleanup();
    });
    await u.dest.ready();
    const file = path.join(u.folder, ".bsched-data.lock");
    const old = {
      tool: "bsched",
      what: "backup of set data",
      pid: 999_999,
      host: "another-server",
      since: "2026-01-01T00:00:00.000Z",
      expires: "2026-01-01T00:02:00.000Z",
      token: "0123456789abcdef",
    };
    await fs.writeFile(file, `${JSON.stringify(old)}\n`);
    const lease = await u.dest.lock("data", "prune of set data", systemClock);
    const now = JSON.parse(await fs.readFile(file, "utf8"));
    assert.equal(now.what, "prune of set data");
    assert.equal(now.pid, process.pid);
    assert.deepEqual(
      (await fs.readdir(u.folder)).filter((n) => n.includes("stale")),
      [],
      "the stale lock moved aside is gone",
    );
    await lease.release();
    await fs.writeFile(file, `${JSON.stringify({ ...old, expires: "2999-01-01T00:00:00.000Z" })}\n`);
    await assert.rejects(u.dest.lock("data", "backup of set data", systemClock), /LOCKED|locked by backup/);
  });
}
