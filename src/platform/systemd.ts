import { execFile, execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { BschedError } from "../core/errors.ts";
import { writeFileAtomic } from "./fsutil.ts";

/**
 * What `bsched service` (src/ops/service.ts) needs from the machine: systemd, its unit folder,
 * the user database, ownership. Each tool that fails is a SERVICE error naming what failed and
 * how to do it by hand.
 */

/** Whether systemd is the running service manager (not merely installed, as in a container). */
export function systemdRunning(): boolean {
  return existsSync("/run/systemd/system");
}

export function fileExists(file: string): boolean {
  return existsSync(file);
}

/** `systemctl is-active UNIT`'s answer (it exits non-zero for anything but active: stdout says). */
export function unitActiveState(unit: string): Promise<string> {
  return new Promise<string>((resolve) =>
    execFile("systemctl", ["is-active", unit], { timeout: 10_000 }, (_e, stdout) =>
      resolve(String(stdout ?? "").trim()),
    ),
  );
}

export function userExists(user: string): boolean {
  return spawnSync("getent", ["passwd", user], { stdio: "ignore" }).status === 0;
}

/** Run a system tool; its failure is a SERVICE error with `doing` and its stderr. */
export function runTool(cmd: string, args: string[], doing: string): void {
  try {
    execFileSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; code?: string; message: string };
    const why =
      err.code === "ENOENT" ? `${cmd} is not installed` : err.stderr?.toString().trim() || err.message;
    throw new BschedError("SERVICE", `${doing} failed: ${why}`, {
      hint:
        cmd === "useradd"
          ? "run as root, or create the user yourself and pass it with --user"
          : "run as root on a machine where systemd is the service manager; `bsched service install --print` shows the unit to install by hand",
      cause: e,
    });
  }
}

/** Create `folder` if missing and give it (and everything in it) to `user`. */
export async function giveFolder(folder: string, user: string): Promise<void> {
  await fsp.mkdir(folder, { recursive: true });
  runTool("chown", ["-R", `${user}:`, folder], `giving ${folder} to ${user}`);
}

/** Write a unit file: temporary name, fsync, rename. */
export async function writeUnitFile(file: string, text: string): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, text);
}

export async function removeFile(file: string): Promise<void> {
  await fsp.rm(file);
}
