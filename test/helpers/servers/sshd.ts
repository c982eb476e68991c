import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { tempDir } from "../cli.ts";
import { freePort, missingPrograms } from "./need.ts";

const run = promisify(execFile);

/** The dedicated login the test servers accept: never root (root's shell start-up costs ~1 s per session). */
export const SSHD_USER = "bsched-test";

const PROGRAMS = {
  "/usr/sbin/sshd": "openssh-server",
  "/usr/bin/ssh-keygen": "openssh-client",
  "/usr/sbin/useradd": "passwd",
};

export interface SshdServer {
  host: string;
  port: number;
  user: string;
  /** The user's private key (ed25519, no passphrase), readable by root only. */
  privateKeyFile: string;
  /** The user's password when started with `password: true` (set for this run, random). */
  password?: string;
  /** `SHA256:…` of the server's host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** A folder owned by the user, for the destination's `path` (the same path on this machine). */
  dir: string;
  /** The server's log (sshd -e), for a failing test's message. */
  log(): Promise<string>;
  /** Stop the server and every session it serves (SIGKILL: a crash, as the client sees it). */
  stop(): Promise<void>;
  /** Start it again on the same port with the same keys. */
  restart(): Promise<void>;
  /** Stop it and remove everything it made. */
  close(): Promise<void>;
}

/** Why the test cannot run here (the Debian package to install), or undefined. Throws in CI. */
export function sshdMissing(): string | undefined {
  return missingPrograms(PROGRAMS);
}

/** `SHA256:…` of an OpenSSH public key line (`type base64 comment`), as ssh-keygen -lf prints it. */
export function fingerprintOf(pubLine: string): string {
  const blob = Buffer.from(pubLine.trim().split(/\s+/)[1] ?? "", "base64");
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** A throw-away ed25519 key pair at `file` (and `file.pub`): returns the public line. */
export async function makeKey(file: string): Promise<string> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "bsched-test", "-f", file]);
  return fs.readFile(`${file}.pub`, "utf8");
}

/**
 * The test user, made once per machine and shared by every test process: creation races with
 * another process doing the same are tolerated ("already exists"). Its password field is `*`
 * (with `UsePAM no`, the `!` useradd sets refuses even key logins), so only keys log in. A server
 * started with `password: true` gets a user of its own instead (passwordUser): two test files
 * setting one shared user's password at once would lock each other out.
 */
async function ensureUser(user = SSHD_USER): Promise<void> {
  const exists = () =>
    run("id", ["-u", user]).then(
      () => true,
      () => false,
    );
  if (await exists()) return;
  const made = await run("useradd", ["--system", "-M", "-d", "/nonexistent", "-s", "/bin/sh", user]).then(
    () => true,
    async (e: unknown) => {
      if (!(await exists())) throw e;
      return false; // another test process made it meanwhile (and sets its password field)
    },
  );
  if (made) await setPasswordHash(user, "*");
}

/** Set a user's password field (`*`, or a crypt hash) through chpasswd's stdin, never argv. */
async function setPasswordHash(user: string, hash: string): Promise<void> {
  await feed("chpasswd", ["-e"], `${user}:${hash}\n`);
}

/** Every process below `pid` (sshd forks a session process per login, in sessions of their own). */
async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const name of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await fs.readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so parse after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!Number.isInteger(ppid)) continue;
    parents.set(ppid, [...(parents.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of parents.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Until something accepts a TCP connection on the port (sshd is up), or the process exited. */
async function waitListening(port: number, child: ChildProcess, log: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`sshd exited (${child.exitCode ?? child.signalCode}): ${await log()}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on port ${port}: ${await log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * OpenSSH's sshd on a free loopback port with its own config, a throw-away host key and user key
 * and a folder owned by the test user, all in a private temp folder (docs/design.md "Testing
 * destinations"). `password: true` also gives the user a random password while it runs;
 * `sftpOnly: true` serves SFTP and nothing else (`ForceCommand internal-sftp`: no command runs,
 * as on a hosting provider's sftp-only account). Callers
 * `close()` it (t.after); the temp folder goes with the test process regardless.
 */
export async function startSshd(opts: { password?: boolean; sftpOnly?: boolean } = {}): Promise<SshdServer> {
  const root = await tempDir("bsched-sshd-");
  // The user reaches its folder through the temp folder: traversable, not listable by others.
  await fs.chmod(root, 0o711);
  // A password server's user is its own, removed by close() (a name of at most 32 characters).
  const user = opts.password ? `bsched-pw-${randomBytes(5).toString("hex")}` : SSHD_USER;
  await ensureUser(user);
  // Removed with the test process too, should it end without close().
  if (user !== SSHD_USER) process.once("exit", () => spawnSync("userdel", [user], { stdio: "ignore" }));
  await fs.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const etc = path.join(root, "etc");
  await fs.mkdir(etc, { mode: 0o700 });
  const hostKey = path.join(etc, "host_ed25519");
  const hostPub = await makeKey(hostKey);
  const privateKeyFile = path.join(etc, "user_ed25519");
  const userPub = await makeKey(privateKeyFile);
  const authorized = path.join(etc, "authorized_keys");
  await fs.writeFile(authorized, userPub, { mode: 0o644 });
  await fs.chmod(etc, 0o711);
  const dir = path.join(root, "srv");
  await fs.mkdir(dir);
  const { stdout: uid } = await run("id", ["-u", user]);
  const { stdout: gid } = await run("id", ["-g", user]);
  await fs.chown(dir, Number(uid), Number(gid));
  await fs.chmod(dir, 0o755);
  let password: string | undefined;
  if (opts.password) {
    password = `pw-${randomBytes(12).toString("hex")}`;
    await setPasswordHash(user, await hashPassword(password));
  }
  const port = await freePort();
  const config = path.join(etc, "sshd_config");
  await fs.writeFile(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      "PidFile none",
      "UsePAM no",
      // The key files live in a temp folder whose parents root owns but the test may not control.
      "StrictModes no",
      `AuthorizedKeysFile ${authorized}`,
      `PasswordAuthentication ${opts.password ? "yes" : "no"}`,
      "KbdInteractiveAuthentication no",
      `AllowUsers ${user}`,
      "Subsystem sftp internal-sftp",
      ...(opts.sftpOnly ? ["ForceCommand internal-sftp"] : []),
      "LogLevel VERBOSE",
      "",
    ].join("\n"),
  );
  const logFile = path.join(root, "sshd.log");
  const log = () => fs.readFile(logFile, "utf8").catch(() => "");
  let child: ChildProcess | undefined;

  const start = async () => {
    const out = await fs.open(logFile, "a");
    try {
      // Its own process group: a signal meant for the test never reaches it, and back.
      child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], {
        stdio: ["ignore", out.fd, out.fd],
        detached: true,
      });
    } finally {
      await out.close();
    }
    child.unref();
    // A test process that ends without close() (a failed hook) leaves no listener behind; its
    // sessions end with their client's socket.
    const pid = child.pid;
    process.once("exit", () => {
      try {
        if (pid !== undefined) process.kill(pid, "SIGKILL");
      } catch {}
    });
    await waitListening(port, child, log);
  };

  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c?.pid || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.ref(); // waited for: keeps the event loop alive until it exited
    // The sessions first (they are not in the listener's process group), then the listener.
    for (const pid of await descendants(c.pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    c.kill("SIGKILL");
    await exited;
  };

  await start();
  return {
    host: "127.0.0.1",
    port,
    user,
    privateKeyFile,
    ...(password === undefined ? {} : { password }),
    hostKeyFingerprint: fingerprintOf(hostPub),
    dir,
    log,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      if (user !== SSHD_USER) await run("userdel", [user]).catch(() => undefined);
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

/** A crypt(3) SHA-512 hash of `password`, computed by openssl reading it on stdin (never argv). */
function hashPassword(password: string): Promise<string> {
  return feed("openssl", ["passwd", "-6", "-stdin"], `${password}\n`);
}

/** Run `cmd` with `input` on its stdin: its trimmed stdout. */
function feed(cmd: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.stderr.on("data", (d) => {
      err += d;
    });
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${cmd}: ${err}`))));
    p.stdin.end(input);
  });
}
