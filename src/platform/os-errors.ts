import { readFileSync, realpathSync, statfsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BschedError, type ErrorCode } from "../core/errors.ts";

/**
 * Operating-system errors (ENOSPC, EACCES, EROFS…) turned into BschedErrors that name the path,
 * the sizes and the fix. The one place that knows errno names: the backup run calls it where it
 * knows the folder and the bytes it needs, and the CLI's reportError calls it for anything else,
 * so no raw `ENOSPC: no space left on device, write` ever reaches the user without a hint.
 */
export interface OsErrorContext {
  /** The file or folder concerned, when the error does not say (a write() on an open file has no path). */
  path?: string;
  /** What was being done, e.g. "backup of set data". */
  doing?: string;
  /** Bytes the operation needed, when known (DISK_FULL says needed vs free). */
  neededBytes?: number;
  /** Overrides the generic hint of a full disk (the caller knows which config key moves the folder). */
  diskFullHint?: string;
}

/** A system error from Node: a numeric errno and a string code such as "ENOSPC". */
export function isSystemError(e: unknown): e is NodeJS.ErrnoException {
  return (
    e instanceof Error &&
    typeof (e as NodeJS.ErrnoException).code === "string" &&
    typeof (e as NodeJS.ErrnoException).errno === "number"
  );
}

/** `e` as a BschedError when it is a system error; anything else is returned unchanged. */
export function fromOsError(e: unknown, ctx: OsErrorContext = {}): unknown {
  if (e instanceof BschedError || !isSystemError(e)) return e;
  const code = e.code as string;
  const where = e.path ?? ctx.path;
  const raw = `[${e.message}]`;
  const doing = ctx.doing ? ` (${ctx.doing})` : "";
  const what = e.syscall ? `cannot ${e.syscall}` : "cannot access";
  const make = (c: ErrorCode, message: string, hint: string) =>
    new BschedError(c, `${message}${doing} ${raw}`, { hint, cause: e });
  switch (code) {
    case "ENOSPC":
    case "EDQUOT": {
      // The caller's folder first: the file that hit the limit may be a temporary one, gone by
      // now. With no path at all (a write() on an open file, no context) the disk is unknown.
      const dir = ctx.path ?? e.path;
      const free = dir === undefined ? undefined : freeBytes(dir);
      const place = dir === undefined ? "the device being written" : describePlace(dir);
      const sizes = [
        ctx.neededBytes !== undefined ? `needed ~${megabytes(ctx.neededBytes)}` : undefined,
        free !== undefined ? `free ${megabytes(free)}` : undefined,
      ].filter(Boolean);
      return make(
        "DISK_FULL",
        `no space left on ${place}${code === "EDQUOT" ? " (disk quota reached)" : ""}${sizes.length ? `: ${sizes.join(", ")}` : ""}`,
        ctx.diskFullHint ??
          `free space on ${dir === undefined ? "that disk" : (mountPointOf(dir) ?? dir)} (remove old backups: \`bsched prune SET\`), or use a larger disk`,
      );
    }
    case "EACCES":
    case "EPERM":
      return make(
        "PERMISSION_DENIED",
        `permission denied: ${what} ${where ?? "(no path given)"}`,
        `bsched runs as ${userName()}: give that user access to ${where ? path.dirname(where) : "the folder"} ` +
          "(chown / chmod), or run bsched as a user that has it",
      );
    case "EROFS":
      return make(
        "IO",
        `read-only file system: ${what} ${where ?? ""}`.trimEnd(),
        `remount ${where ? (mountPointOf(where) ?? where) : "it"} read-write, or choose a writable folder`,
      );
    case "ENOTDIR":
      return make(
        "IO",
        `${where ?? "a path"}: a part of this path is a file, not a folder`,
        "fix the path (in the config or on the command line), or move the file that stands in the way",
      );
    case "ENOENT":
      return make(
        "IO",
        `${where ?? "a file or folder"} does not exist (${e.syscall ?? "access"})`,
        "it was removed or unmounted meanwhile: check the folder, then run again",
      );
    case "EIO":
    case "ESTALE":
    case "ENXIO":
    case "ENODEV":
      return make(
        "IO",
        `input/output error on ${where ?? "the disk"}: the disk or network share failed`,
        "check the disk (dmesg, smartctl) or the share's connection, then run `bsched verify`",
      );
    case "EMFILE":
    case "ENFILE":
      return make(
        "IO",
        "too many open files",
        "raise the open-files limit (ulimit -n, or LimitNOFILE= for a service)",
      );
    default:
      return make(
        "IO",
        `${what} ${where ?? ""}`.trimEnd(),
        where
          ? `check ${where} (it exists, is a folder where one is expected, and is writable)`
          : "check the disk",
      );
  }
}

/** Free bytes for an unprivileged writer in the file system holding `p` (its nearest existing folder). */
export function freeBytes(p: string): number | undefined {
  for (let dir = path.resolve(p); ; dir = path.dirname(dir)) {
    try {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    } catch {
      if (dir === path.dirname(dir)) return undefined;
    }
  }
}

/** The mount point holding `p` (Linux /proc/self/mountinfo), or undefined where it cannot be told. */
export function mountPointOf(p: string): string | undefined {
  let real: string;
  try {
    real = realExisting(p);
    const points = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[4])
      .filter((m): m is string => m !== undefined)
      .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
    let best: string | undefined;
    for (const m of points) {
      const inside = m === "/" || real === m || real.startsWith(`${m}/`);
      if (inside && (best === undefined || m.length > best.length)) best = m;
    }
    return best;
  } catch {
    return undefined;
  }
}

/**
 * The real path of `p` even when its end does not exist yet: the real path of its deepest
 * existing ancestor, joined with the rest. Symlinks on the way are resolved, so two paths that
 * reach the same folder compare equal.
 */
export function realExisting(p: string): string {
  const abs = path.resolve(p);
  try {
    return realpathSync.native(abs);
  } catch {
    const parent = path.dirname(abs);
    if (parent === abs) return abs;
    return path.join(realExisting(parent), path.basename(abs));
  }
}

function describePlace(dir: string): string {
  const mount = mountPointOf(dir);
  return mount && mount !== path.resolve(dir) ? `${mount} (the file system of ${dir})` : dir;
}

export function megabytes(n: number): string {
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
}

function userName(): string {
  const uid = process.getuid?.();
  let name: string | undefined;
  try {
    name = os.userInfo().username;
  } catch {
    // No passwd entry for this uid (a container's arbitrary user): the uid alone says it.
  }
  if (uid === undefined) return `user ${name ?? "(unknown)"}`;
  return name ? `user ${name} (uid ${uid})` : `uid ${uid}`;
}
