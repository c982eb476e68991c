import { createHash } from "node:crypto";
import { constants as C } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { errnoCode } from "../core/errors.ts";
import type { Entry, Manifest, ProgressCallback } from "../core/types.ts";
import { readManifest } from "../destination/local/folder.ts";
import { type CopyResult, copyAndHash } from "../platform/copy.ts";
import { beneath, forEachLimit } from "../platform/fsutil.ts";
import { loadBeside } from "../restore/locate.ts";
import { resolveChain } from "../snapshot/chain.ts";
import { FILES_DIR } from "../snapshot/manifest.ts";
import { readSmallSync, SMALL_FILE_MAX } from "../source/consistent.ts";
import { readSelfExtractingHeader } from "../writer/compressed/header.ts";
import { selfExtractingName } from "../writer/compressed/names.ts";

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
  // The totals come first, from every manifest, so the progress line's percentage and ETA are the
  // whole run's from the first file on. Manifests are read again below, one at a time, rather than
  // all held in memory; one that cannot be read here is reported below.
  for (const name of names) {
    const link = await loadBeside(folder, name).catch(() => undefined);
    if (!link) continue;
    const manifest = link.manifest ?? (await readManifest(link.path).catch(() => undefined))?.manifest;
    const own = manifest ? ownFiles(manifest, name) : [];
    progress.totalFiles += own.length;
    progress.totalBytes += own.reduce((n, e) => n + (e.size ?? 0), 0);
  }
  onProgress?.({ ...progress });
  for (const name of names) {
    let manifest: Manifest;
    let link: Awaited<ReturnType<typeof loadBeside>>;
    try {
      // A backup folder, or a self-extracting file lying alone (its manifest is inside it).
      link = await loadBeside(folder, name);
      if (!link) {
        problems.push({ backup: name, problem: "manifest missing: not a complete backup" });
        continue;
      }
      manifest = link.manifest ?? (await readManifest(link.path)).manifest;
      await resolveChain(link, (n) => loadBeside(folder, n));
    } catch (e) {
      problems.push({ backup: name, problem: (e as Error).message });
      continue;
    }
    const own = ownFiles(manifest, name);
    const compare = (e: Entry, r: CopyResult) => {
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
    };
    const counted = (e: Entry) => {
      result.files++;
      progress.files++;
      onProgress?.({ ...progress, current: e.path });
    };
    const onBytes = (n: number) => {
      progress.bytes += n;
    };
    if (manifest.type === "compressed") {
      const file = link.payload ?? path.join(link.path, selfExtractingName(name));
      await verifyPayload(file, name, link.digest, own, problems, compare, counted, onBytes);
      continue;
    }
    const realDirs = new Set<string>();
    await forEachLimit(own, 4, async (e) => {
      try {
        const at = beneath(path.join(link.path, FILES_DIR), e.path, realDirs);
        // Small files whole, with synchronous calls; a file that turns out larger takes the stream.
        const small =
          (e.size ?? Number.POSITIVE_INFINITY) <= SMALL_FILE_MAX ? readSmallSync(at, () => true) : undefined;
        if (small) {
          onBytes(small.data.length);
          compare(e, {
            bytes: small.data.length,
            sha256: createHash("sha256").update(small.data).digest("hex"),
          });
        } else {
          const fh = await fs.open(at, C.O_RDONLY | C.O_NOFOLLOW);
          try {
            compare(e, await copyAndHash(fh, undefined, onBytes));
          } finally {
            await fh.close();
          }
        }
      } catch (err) {
        const why = errnoCode(err) === "ENOENT" ? "missing" : `unreadable (${(err as Error).message})`;
        problems.push({ backup: name, path: e.path, problem: why });
      }
      counted(e);
    });
  }
  problems.sort((a, b) => (a.backup + (a.path ?? "") < b.backup + (b.path ?? "") ? -1 : 1));
  return result;
}

/** The files a backup stores itself (the others are its parents'). */
function ownFiles(manifest: Manifest, name: string): Entry[] {
  return manifest.entries.filter((e) => e.kind === "file" && e.from === name);
}

/**
 * A compressed backup: the payload's size and sha256 against its header, the embedded manifest
 * against the manifest of the backup (`manifestDigest`: the one beside the file), then every stored file re-hashed from the payload. When the
 * payload breaks off, every file not reached is named.
 */
async function verifyPayload(
  file: string,
  name: string,
  manifestDigest: string,
  own: Entry[],
  problems: VerifyProblem[],
  compare: (e: Entry, r: CopyResult) => void,
  counted: (e: Entry) => void,
  onBytes: (n: number) => void,
): Promise<void> {
  let header: Awaited<ReturnType<typeof readSelfExtractingHeader>>;
  try {
    header = await readSelfExtractingHeader(file);
  } catch (e) {
    problems.push({
      backup: name,
      problem: errnoCode(e) === "ENOENT" ? `self-extracting file missing: ${file}` : (e as Error).message,
    });
    return;
  }
  // Loaded only for compressed backups: tar's code is not needed for the others.
  const { forEachMember, payloadDigest } = await import("../writer/compressed/reader.ts");
  const { hashStream } = await import("../restore/from-payload.ts");
  const d = await payloadDigest(file, header);
  if (d.size !== header.payloadSize) {
    problems.push({
      backup: name,
      path: path.basename(file),
      problem: `damaged: payload is ${d.size} bytes, its header says ${header.payloadSize} (truncated or extended)`,
    });
  } else if (d.sha256 !== header.payloadSha256) {
    problems.push({
      backup: name,
      path: path.basename(file),
      problem: "damaged: payload sha256 differs from its header",
    });
  }
  const wanted = new Map(own.map((e) => [e.path, e]));
  const last = new Map<string, CopyResult>();
  try {
    await forEachMember(file, header, async (entry) => {
      if (entry.path === header.manifestMember) {
        const r = await hashStream(entry, undefined);
        if (r.sha256 !== manifestDigest) {
          problems.push({
            backup: name,
            path: header.manifestMember,
            problem: "the manifest inside the payload differs from manifest.json beside it",
          });
        }
        return undefined;
      }
      const e = entry.type === "File" ? wanted.get(entry.path) : undefined;
      if (e) last.set(e.path, await hashStream(entry, undefined, onBytes));
      return undefined;
    });
  } catch (err) {
    problems.push({ backup: name, problem: `payload unreadable: ${(err as Error).message}` });
  }
  for (const e of own) {
    const r = last.get(e.path);
    if (r) compare(e, r);
    else problems.push({ backup: name, path: e.path, problem: "missing or unreadable in the payload" });
    counted(e);
  }
}
