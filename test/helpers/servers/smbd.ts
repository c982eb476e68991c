import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import { connect } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { tempDir } from "../cli.ts";
import { freePort, missingPrograms } from "./need.ts";

const run = promisify(execFile);

/** A Samba server on loopback for one test (or one test file), and how to stop it. */
export interface SmbServer {
  /** `//127.0.0.1/backups`. */
  share: string;
  port: number;
  user: string;
  password: string;
  /** The workgroup (what a service login's `domain` is). */
  domain: string;
  /** The local folder the share serves. */
  dir: string;
  /** Stop smbd (a test's "server down"); `restart` brings it back on the same port (nothing if up). */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Stop it and remove everything (config, passdb, share, its tmpfs if any). */
  cleanup(): Promise<void>;
}

/** The programs it needs, or why the test is skipped (in CI: an exception). */
export function smbdMissing(): string | undefined {
  return missingPrograms({
    "/usr/sbin/smbd": "samba",
    "/usr/bin/smbpasswd": "samba",
    "/usr/bin/smbclient": "smbclient",
    "/usr/bin/stdbuf": "coreutils",
  });
}

/** The unix account the share's user maps to (Samba needs one): made once, whoever comes first. */
export const SMB_UNIX_USER = "bsched-smb";

async function ensureUnixUser(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (
      await run("id", ["-u", SMB_UNIX_USER]).then(
        () => true,
        () => false,
      )
    )
      return;
    // Two test processes may race: one creates it, the other gets "exists" or a busy /etc/passwd.
    await run("useradd", [
      "--system",
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      SMB_UNIX_USER,
    ]).catch(() => new Promise((r) => setTimeout(r, 100)));
  }
  throw new Error(`could not create the unix user ${SMB_UNIX_USER}`);
}

async function waitForPort(port: number, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `smbd exited (${child.exitCode ?? child.signalCode}): ${await fs.readFile(log, "utf8").catch(() => "")}`,
      );
    }
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`smbd did not listen on port ${port} within 30 s`);
}

/**
 * Start `smbd` on a free loopback port with its own config, passdb, lock, state, cache and log
 * folders, one share `backups` (written as root: `force user`) and a user in a workgroup, added
 * with `smbpasswd -a -s` (the password on its stdin). `fullSize` (e.g. "2m") puts the share on a
 * tmpfs of that size (we are root): the full-share test. Never `--no-process-group`: smbd sends
 * SIGTERM to its whole process group when it stops, which would be the test runner's.
 */
export async function startSmbd(opts: { fullSize?: string } = {}): Promise<SmbServer> {
  await ensureUnixUser();
  const root = await tempDir("bsched-smbd-");
  const dir = path.join(root, "share");
  const log = path.join(root, "log", "smbd.log");
  for (const d of ["share", "private", "lock", "state", "cache", "pid", "ncalrpc", "log"]) {
    await fs.mkdir(path.join(root, d), { recursive: true });
  }
  let mounted = false;
  if (opts.fullSize !== undefined) {
    await run("mount", ["-t", "tmpfs", "-o", `size=${opts.fullSize},mode=0755`, "tmpfs", dir]);
    mounted = true;
  }
  const port = await freePort();
  const domain = "BSCHEDTEST";
  const password = `pw-${randomBytes(9).toString("hex")}`;
  const conf = path.join(root, "smb.conf");
  await fs.writeFile(
    conf,
    `[global]
workgroup = ${domain}
server role = standalone server
smb ports = ${port}
interfaces = 127.0.0.1
bind interfaces only = yes
disable netbios = yes
private dir = ${root}/private
lock directory = ${root}/lock
state directory = ${root}/state
cache directory = ${root}/cache
pid directory = ${root}/pid
ncalrpc dir = ${root}/ncalrpc
log file = ${log}
log level = 1
passdb backend = tdbsam:${root}/private/passdb.tdb
load printers = no
printing = bsd
printcap name = /dev/null
disable spoolss = yes
[backups]
path = ${dir}
read only = no
valid users = ${SMB_UNIX_USER}
force user = root
`,
  );
  await new Promise<void>((resolve, reject) => {
    const p = spawn("smbpasswd", ["-c", conf, "-a", "-s", SMB_UNIX_USER], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    let err = "";
    p.stderr.on("data", (d) => {
      err += d;
    });
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`smbpasswd failed: ${err}`))));
    p.stdin.end(`${password}\n${password}\n`);
  });

  let child: ChildProcess | undefined;
  const start = async () => {
    if (child && child.exitCode === null && child.signalCode === null) return; // already up
    child = spawn("smbd", ["-F", "-s", conf], { stdio: "ignore" });
    await waitForPort(port, child, log);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGTERM");
    const t = setTimeout(() => c.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(t);
  };
  await start();
  return {
    share: "//127.0.0.1/backups",
    port,
    user: SMB_UNIX_USER,
    password,
    domain,
    dir,
    stop,
    restart: start,
    async cleanup() {
      await stop();
      if (mounted) await run("umount", ["-l", dir]).catch(() => undefined);
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}
