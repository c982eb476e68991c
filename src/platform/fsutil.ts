import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants as C, lstatSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { BschedError, errnoCode } from "../core/errors.ts";

/** fsync a folder so that entries created or renamed in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function tempName(base: string): string {
  return `.${base}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/**
 * Write a file under a temporary name, fsync it, and move it into place, so that readers see
 * the old content or the new, never a part. With `exclusive`, an existing file is never
 * replaced (the final step is link(), which fails on an existing name).
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: { exclusive?: boolean; mode?: number } = {},
): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, tempName(path.basename(file)));
  const fh = await fs.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, options.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    if (options.exclusive) {
      try {
        await fs.link(tmp, file);
      } catch (e) {
        if (errnoCode(e) === "EEXIST") {
          throw new BschedError("IO", `refusing to overwrite existing file ${file}`, { cause: e });
        }
        throw e;
      }
      await fs.unlink(tmp);
    } else {
      await fs.rename(tmp, file);
    }
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

export async function pathExists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return false;
    throw e;
  }
}

/**
 * Make everything written under `dir` durable. `sync -f` (syncfs) flushes the whole file system
 * in one call, far cheaper than an fsync per file and folder; where it is missing, fall back to
 * fsyncing every file and folder of the tree.
 */
export async function syncTree(dir: string): Promise<void> {
  const ok = await new Promise<boolean>((resolve) => {
    const p = spawn("sync", ["-f", dir], { stdio: "ignore" });
    p.on("error", () => resolve(false));
    p.on("exit", (code) => resolve(code === 0));
  });
  if (ok) return;
  const walk = async (d: string): Promise<void> => {
    for (const ent of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) {
        const fh = await fs.open(p, C.O_RDONLY);
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
    }
    await fsyncDir(d);
  };
  await walk(dir);
}

/** Run `fn` over `items` with at most `limit` in flight; the first error stops new work and is thrown. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

/**
 * The path of `rel` (a checked relative path) under `root`, refusing a symlink at any folder
 * step: backup folders are untrusted input, and a folder swapped for a link would make a
 * restore or verify read from elsewhere. `realDirs` remembers folders already checked. The
 * last step is the caller's to open with O_NOFOLLOW.
 */
export function beneath(root: string, rel: string, realDirs: Set<string>): string {
  let dir = root;
  for (const part of rel.split("/").slice(0, -1)) {
    dir = path.join(dir, part);
    if (realDirs.has(dir)) continue;
    if (!lstatSync(dir).isDirectory()) {
      throw Object.assign(new Error(`${dir} is not a folder (a link or file stands in its place)`), {
        code: "ELOOP",
      });
    }
    realDirs.add(dir);
  }
  return path.join(root, rel);
}

/** Open `rel` under `root` for reading, with no symlink at any step (see `beneath`). */
export async function openBeneath(root: string, rel: string, realDirs: Set<string>): Promise<fs.FileHandle> {
  return fs.open(beneath(root, rel, realDirs), C.O_RDONLY | C.O_NOFOLLOW);
}
