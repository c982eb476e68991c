import { type BigIntStats, type Dirent, lstatSync, readdirSync, readlinkSync } from "node:fs";
import path from "node:path";
import { errnoCode } from "../core/errors.ts";
import type { Entry, Warning } from "../core/types.ts";

export interface ScanResult {
  /** Every entry under the source, sorted by path; files without sha256/from yet. */
  entries: Entry[];
  warnings: Warning[];
}

export function entryFromStat(rel: string, st: BigIntStats): Entry | undefined {
  const base = {
    path: rel,
    mode: Number(st.mode & 0o7777n),
    mtimeNs: st.mtimeNs.toString(),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
  if (st.isFile()) {
    return {
      ...base,
      kind: "file",
      size: Number(st.size),
      ino: st.ino.toString(),
      ctimeNs: st.ctimeNs.toString(),
    };
  }
  if (st.isDirectory()) return { ...base, kind: "dir" };
  if (st.isSymbolicLink()) return { ...base, kind: "symlink" };
  return undefined;
}

/**
 * Walk `root` without following symlinks. Unreadable folders and files that vanish are
 * warnings, not failures: the run goes on and says what it could not see.
 *
 * The walk uses synchronous lstat/readdir: a stat is a few microseconds in the kernel, while a
 * round trip through the libuv thread pool costs several times that, and a scan of 30,000
 * files is mostly round trips. The event loop is given back after every folder.
 */
export async function scanTree(root: string, onProgress?: (files: number) => void): Promise<ScanResult> {
  const entries: Entry[] = [];
  const warnings: Warning[] = [];
  const queue: string[] = [""];
  let sinceYield = 0;
  while (queue.length > 0) {
    const relDir = queue.pop() as string;
    let dirents: Dirent[];
    try {
      dirents = readdirSync(path.join(root, relDir), { withFileTypes: true });
    } catch (e) {
      warnings.push({
        path: relDir || ".",
        code: "UNREADABLE",
        message: `cannot list folder: ${(e as Error).message}`,
      });
      continue;
    }
    for (const d of dirents) {
      const rel = relDir ? `${relDir}/${d.name}` : d.name;
      const abs = path.join(root, rel);
      let st: BigIntStats;
      try {
        st = lstatSync(abs, { bigint: true });
      } catch (e) {
        // A name that is not valid UTF-8 comes back from readdir with U+FFFD in it and cannot
        // be opened by that name: say so, rather than that the file vanished.
        if (errnoCode(e) === "ENOENT" && d.name.includes("\uFFFD")) {
          warnings.push({
            path: rel,
            code: "UNSUPPORTED_NAME",
            message: "the file name is not valid UTF-8 and cannot be backed up; rename it",
          });
          continue;
        }
        const code = errnoCode(e) === "ENOENT" ? "VANISHED" : "UNREADABLE";
        warnings.push({ path: rel, code, message: (e as Error).message });
        continue;
      }
      const entry = entryFromStat(rel, st);
      if (!entry) {
        warnings.push({
          path: rel,
          code: "SKIPPED_SPECIAL",
          message: "not a file, folder or symlink (device, fifo or socket): skipped",
        });
        continue;
      }
      if (entry.kind === "symlink") {
        try {
          entry.target = readlinkSync(abs);
        } catch (e) {
          warnings.push({ path: rel, code: "UNREADABLE", message: (e as Error).message });
          continue;
        }
      }
      if (entry.kind === "dir") queue.push(rel);
      entries.push(entry);
    }
    onProgress?.(entries.length);
    sinceYield += dirents.length;
    if (sinceYield >= 2000) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { entries, warnings };
}
