import type { BigIntStats, Dirent } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { errnoCode } from "../core/errors.ts";
import type { Entry, Warning } from "../core/types.ts";

export interface ScanResult {
  /** Every entry under the source, sorted by path; files without sha256/from yet. */
  entries: Entry[];
  warnings: Warning[];
}

const STAT_CONCURRENCY = 32;

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
 */
export async function scanTree(root: string, onProgress?: (files: number) => void): Promise<ScanResult> {
  const entries: Entry[] = [];
  const warnings: Warning[] = [];
  const queue: string[] = [""];
  while (queue.length > 0) {
    const relDir = queue.pop() as string;
    let dirents: Dirent[];
    try {
      dirents = await fs.readdir(path.join(root, relDir), { withFileTypes: true });
    } catch (e) {
      warnings.push({
        path: relDir || ".",
        code: "UNREADABLE",
        message: `cannot list folder: ${(e as Error).message}`,
      });
      continue;
    }
    for (let i = 0; i < dirents.length; i += STAT_CONCURRENCY) {
      const batch = dirents.slice(i, i + STAT_CONCURRENCY);
      const stats = await Promise.all(
        batch.map(async (d) => {
          const rel = relDir ? `${relDir}/${d.name}` : d.name;
          try {
            return { rel, st: await fs.lstat(path.join(root, rel), { bigint: true }) };
          } catch (e) {
            const code = errnoCode(e) === "ENOENT" ? "VANISHED" : "UNREADABLE";
            warnings.push({ path: rel, code, message: (e as Error).message });
            return undefined;
          }
        }),
      );
      for (const s of stats) {
        if (!s) continue;
        const entry = entryFromStat(s.rel, s.st);
        if (!entry) {
          warnings.push({
            path: s.rel,
            code: "SKIPPED_SPECIAL",
            message: "not a file, folder or symlink (device, fifo or socket): skipped",
          });
          continue;
        }
        if (entry.kind === "symlink") {
          try {
            entry.target = await fs.readlink(path.join(root, s.rel));
          } catch (e) {
            warnings.push({ path: s.rel, code: "UNREADABLE", message: (e as Error).message });
            continue;
          }
        }
        if (entry.kind === "dir") queue.push(s.rel);
        entries.push(entry);
      }
      onProgress?.(entries.length);
    }
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { entries, warnings };
}
