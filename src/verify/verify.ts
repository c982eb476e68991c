import { constants as C } from "node:fs";
import fs from "node:fs/promises";
import { errnoCode } from "../core/errors.ts";
import type { ProgressCallback } from "../core/types.ts";
import { loadLink, readManifest } from "../destination/local/folder.ts";
import { copyAndHash } from "../platform/copy.ts";
import { forEachLimit } from "../platform/fsutil.ts";
import { resolveChain } from "../snapshot/chain.ts";
import { storedPath } from "../writer/separate.ts";

export interface VerifyProblem {
  backup: string;
  /** The damaged or missing file; absent for a problem of the backup as a whole. */
  path?: string;
  problem: string;
}

export interface VerifyResult {
  backups: number;
  files: number;
  bytes: number;
  problems: VerifyProblem[];
}

/**
 * Re-read and re-hash every file each backup stores, and check each backup's chain (parent
 * present, parent manifest digest as recorded). Problems are collected, never thrown, so one
 * run names every damaged or missing file.
 */
export async function verifyBackups(
  folder: string,
  names: string[],
  onProgress?: ProgressCallback,
): Promise<VerifyResult> {
  const problems: VerifyProblem[] = [];
  const result: VerifyResult = { backups: names.length, files: 0, bytes: 0, problems };
  const progress = { phase: "verify" as const, files: 0, bytes: 0, totalFiles: 0, totalBytes: 0 };
  for (const name of names) {
    let ref: Awaited<ReturnType<typeof readManifest>>;
    try {
      const link = await loadLink(folder, name);
      if (!link) {
        problems.push({ backup: name, problem: "manifest missing: not a complete backup" });
        continue;
      }
      ref = await readManifest(link.path);
      await resolveChain(link, (n) => loadLink(folder, n));
    } catch (e) {
      problems.push({ backup: name, problem: (e as Error).message });
      continue;
    }
    const own = ref.manifest.entries.filter((e) => e.kind === "file" && e.from === name);
    progress.totalFiles += own.length;
    progress.totalBytes += own.reduce((n, e) => n + (e.size ?? 0), 0);
    await forEachLimit(own, 4, async (e) => {
      const p = storedPath(ref.path, e.path);
      try {
        const fh = await fs.open(p, C.O_RDONLY | C.O_NOFOLLOW);
        try {
          const r = await copyAndHash(fh, undefined, (n) => {
            progress.bytes += n;
          });
          result.bytes += r.bytes;
          if (r.bytes !== e.size) {
            problems.push({
              backup: name,
              path: e.path,
              problem: `damaged: ${r.bytes} bytes, the manifest says ${e.size}`,
            });
          } else if (r.sha256 !== e.sha256) {
            problems.push({
              backup: name,
              path: e.path,
              problem: "damaged: content differs from its sha256 in the manifest",
            });
          }
        } finally {
          await fh.close();
        }
      } catch (err) {
        const why = errnoCode(err) === "ENOENT" ? "missing" : `unreadable (${(err as Error).message})`;
        problems.push({ backup: name, path: e.path, problem: why });
      }
      result.files++;
      progress.files++;
      onProgress?.({ ...progress, current: e.path });
    });
  }
  problems.sort((a, b) => (a.backup + (a.path ?? "") < b.backup + (b.path ?? "") ? -1 : 1));
  return result;
}
