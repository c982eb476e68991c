import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import fsSync from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort, missingPrograms } from "./need.ts";

/**
 * Ceph's S3 gateway on loopback for the tests (docs/design.md "Testing destinations"): one
 * monitor, one OSD on `memstore` (objects in memory: nothing on disk but the monitor's store),
 * and radosgw, with authentication off, all in a private cluster folder under $TMPDIR reached
 * with `-c FILE` on every command (nothing touches /etc/ceph). It takes a few seconds and
 * ~150 MB at start, so ONE cluster serves a whole `npm test` run: test/helpers/global-setup.ts
 * starts it and hands its address to the test files' processes in BSCHED_TEST_CEPH; a test file
 * run alone starts its own (sharedCeph).
 */

export const CEPH_PROGRAMS = {
  "/usr/bin/ceph-mon": "ceph-mon",
  "/usr/bin/ceph-osd": "ceph-osd",
  "/usr/bin/radosgw": "radosgw",
  "/usr/bin/radosgw-admin": "radosgw",
  "/usr/bin/ceph": "ceph-common",
  "/usr/bin/monmaptool": "ceph-base",
} as const;

const run = promisify(execFile);

/** What tests, the end-to-end test and the bench need to reach the gateway. */
export interface Ceph {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A new empty bucket (each test its own, so test files never see each other's objects). */
  newBucket(): Promise<string>;
  /** Another radosgw on the same cluster, on a port of its own: a gateway a test may stop and restart. */
  startGateway(): Promise<Gateway>;
  /** Stop the cluster and remove its folder (a no-op for the run's shared cluster: the global teardown stops it). */
  stop(): Promise<void>;
}

export interface Gateway {
  endpoint: string;
  /** Kill it at once (SIGKILL: connections cut as by a crash or a network drop). */
  kill(): Promise<void>;
  /** Start it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** What the global setup hands the test processes (JSON in BSCHED_TEST_CEPH). */
interface CephAddress {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  conf: string;
  dir: string;
}

const ENV = "BSCHED_TEST_CEPH";

function conf(dir: string, monPort: number, rgwPort: number): string {
  return `[global]
fsid = ${randomUUID()}
mon host = v2:127.0.0.1:${monPort}
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
paxos propose interval = 0.05
paxos min wait = 0.01
osd client watch timeout = 10
[mon.a]
mon data = ${dir}/mon
[osd.0]
osd data = ${dir}/osd
osd objectstore = memstore
memstore device bytes = ${3 * 1024 ** 3}
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
`;
}

/** A daemon in the foreground (-f) of a child of ours: its pid known, its output in the cluster's log folder. */
function daemon(dir: string, name: string, args: string[]): ChildProcess {
  const out = fsSync.openSync(path.join(dir, "log", `${name}.out`), "a");
  const child = spawn(args[0] as string, args.slice(1), { stdio: ["ignore", out, out] });
  fsSync.closeSync(out);
  child.on("error", () => undefined);
  return child;
}

/**
 * SIGKILL: the cluster is thrown away with its folder (memstore keeps nothing anyway), and a
 * graceful stop costs seconds. In reverse start order: a monitor gone first makes the OSD wait.
 */
async function stopDaemon(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

/**
 * Gateways a test process started on this cluster (startGateway) and left running because that
 * process died: found by the pid files startGateway writes in the cluster's run folder, and
 * killed by pid, only when that process still runs on this cluster's config.
 */
async function killStrayGateways(dir: string): Promise<void> {
  const run = path.join(dir, "run");
  for (const f of await fs.readdir(run).catch(() => [] as string[])) {
    if (!f.endsWith(".pid")) continue;
    const pid = Number((await fs.readFile(path.join(run, f), "utf8").catch(() => "")).trim());
    if (!Number.isSafeInteger(pid) || pid <= 1) continue;
    const cmd = await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (!cmd.includes(path.join(dir, "ceph.conf"))) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

/** Until the gateway answers HTTP at all (anonymous bucket list). */
async function waitHttp(endpoint: string, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await fetch(endpoint).then(
      (r) => r.status > 0,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not answer at ${endpoint}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A gateway named `client.<id>` on `port`, on the cluster of `confFile`. */
function gateway(
  dir: string,
  confFile: string,
  id: string,
  port: number,
): Gateway & { start(): Promise<void> } {
  const endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    await fs.mkdir(path.join(dir, `rgw-${id}`), { recursive: true });
    child = daemon(dir, id, [
      "/usr/bin/radosgw",
      "-c",
      confFile,
      "-n",
      `client.${id}`,
      "-f",
      "--rgw-frontends",
      `beast endpoint=127.0.0.1:${port}`,
      "--rgw-data",
      path.join(dir, `rgw-${id}`),
      // No metadata cache, so no watch on the cluster's control objects: killed, it leaves no
      // watch that every other gateway's notifications would wait on (~30 s) until it times out.
      "--rgw-cache-enabled",
      "false",
    ]);
    // Its pid where the teardown looks (radosgw in the foreground writes no pid file itself).
    await fs.writeFile(path.join(dir, "run", `gateway-${id}.pid`), `${child.pid}\n`);
    await waitHttp(endpoint, child, `radosgw ${id}`);
  };
  return {
    endpoint,
    start,
    kill: () => stopDaemon(child),
    async restart() {
      await stopDaemon(child);
      await start();
    },
    stop: () => stopDaemon(child),
  };
}

/** A client-free bucket maker: the SDK, loaded only by the tests that use S3. */
async function makeBucket(a: CephAddress): Promise<string> {
  const { S3Client, CreateBucketCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    endpoint: a.endpoint,
    region: a.region,
    forcePathStyle: true,
    credentials: { accessKeyId: a.accessKeyId, secretAccessKey: a.secretAccessKey },
  });
  try {
    const name = `t-${randomBytes(6).toString("hex")}`;
    await client.send(new CreateBucketCommand({ Bucket: name }));
    return name;
  } finally {
    client.destroy();
  }
}

function attach(a: CephAddress, stop: () => Promise<void>): Ceph {
  const extra: Gateway[] = [];
  let n = 0;
  return {
    endpoint: a.endpoint,
    region: a.region,
    accessKeyId: a.accessKeyId,
    secretAccessKey: a.secretAccessKey,
    newBucket: () => makeBucket(a),
    async startGateway() {
      const g = gateway(a.dir, a.conf, `rgw${process.pid}x${n++}`, await freePort());
      await g.start();
      extra.push(g);
      return g;
    },
    async stop() {
      for (const g of extra.splice(0)) await g.stop();
      await stop();
    },
  };
}

/** Start a whole cluster in a new folder under $TMPDIR; `stop()` stops it in reverse order and removes the folder. */
export async function startCeph(): Promise<Ceph & { address: CephAddress }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "bsched-ceph-"));
  const daemons: ChildProcess[] = [];
  const stop = async () => {
    for (const d of daemons.splice(0).reverse()) await stopDaemon(d);
    await killStrayGateways(dir);
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    for (const d of ["mon", "osd", "run", "log", "rgw"]) await fs.mkdir(path.join(dir, d));
    const [monPort, rgwPort] = [await freePort(), await freePort()];
    const confFile = path.join(dir, "ceph.conf");
    await fs.writeFile(confFile, conf(dir, monPort, rgwPort));
    const fsid = /fsid = (\S+)/.exec(await fs.readFile(confFile, "utf8"))?.[1] as string;
    const monmap = path.join(dir, "monmap");
    await run("/usr/bin/monmaptool", [
      "--create",
      "--addv",
      "a",
      `[v2:127.0.0.1:${monPort}]`,
      "--fsid",
      fsid,
      monmap,
    ]);
    await run("/usr/bin/ceph-mon", ["-c", confFile, "--mkfs", "-i", "a", "--monmap", monmap]);
    daemons.push(daemon(dir, "mon", ["/usr/bin/ceph-mon", "-c", confFile, "-i", "a", "-f"]));
    const osdUuid = randomUUID();
    await run("/usr/bin/ceph", ["-c", confFile, "--connect-timeout", "60", "osd", "new", osdUuid]);
    await run("/usr/bin/ceph-osd", ["-c", confFile, "-i", "0", "--mkfs", "--osd-uuid", osdUuid]);
    daemons.push(daemon(dir, "osd", ["/usr/bin/ceph-osd", "-c", confFile, "-i", "0", "-f"]));
    const rgw = daemon(dir, "rgw", ["/usr/bin/radosgw", "-c", confFile, "-n", "client.rgw", "-f"]);
    daemons.push(rgw);
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitHttp(endpoint, rgw, "radosgw");
    // Keys made by radosgw-admin itself: no secret on a command line (ps shows argv).
    const { stdout } = await run("/usr/bin/radosgw-admin", [
      "-c",
      confFile,
      "user",
      "create",
      "--uid",
      "bsched-test",
      "--display-name",
      "bsched tests",
    ]);
    const key = (JSON.parse(stdout) as { keys: { access_key: string; secret_key: string }[] }).keys[0];
    if (!key) throw new Error("radosgw-admin made no key");
    const address: CephAddress = {
      endpoint,
      region: "us-east-1",
      accessKeyId: key.access_key,
      secretAccessKey: key.secret_key,
      conf: confFile,
      dir,
    };
    return { ...attach(address, stop), address };
  } catch (e) {
    const logs = await fs.readdir(path.join(dir, "log")).catch(() => [] as string[]);
    const tails = await Promise.all(
      logs
        .filter((f) => f.endsWith(".out"))
        .map(async (f) => `${f}: ${(await fs.readFile(path.join(dir, "log", f), "utf8")).slice(-800)}`),
    );
    await stop();
    throw new Error(`Ceph did not start: ${(e as Error).message}\n${tails.join("\n")}`);
  }
}

/** Why Ceph tests are skipped here (a program missing), or undefined; fails instead under BSCHED_TEST_SERVERS=required. */
export function cephMissing(): string | undefined {
  return missingPrograms(CEPH_PROGRAMS);
}

let own: Promise<Ceph> | undefined;

/**
 * The run's shared cluster (from the global setup), or one of this process's own started at first
 * call (a test file run alone): call `releaseCeph` in an `after` hook of the file to stop that one.
 */
export function sharedCeph(): Promise<Ceph> {
  const env = process.env[ENV];
  if (env) {
    const a = JSON.parse(env) as CephAddress;
    return Promise.resolve(attach(a, async () => undefined));
  }
  own ??= startCeph();
  return own;
}

/** Stop this process's own cluster, if sharedCeph started one. */
export async function releaseCeph(): Promise<void> {
  const c = own;
  own = undefined;
  if (c) await (await c.catch(() => undefined))?.stop();
}

/** For the global setup: start the run's cluster and publish its address to the test processes. */
export async function startSharedCeph(): Promise<Ceph | undefined> {
  if (cephMissing() !== undefined) return undefined;
  const c = await startCeph();
  process.env[ENV] = JSON.stringify(c.address);
  return c;
}
