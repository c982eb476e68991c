import { createHash } from "node:crypto";
import path from "node:path";
import { BschedError, errnoCode } from "../core/errors.ts";
import type { Entry, Manifest, ProgressCallback } from "../core/types.ts";
import { readManifest } from "../destination/local/folder.ts";
import { readSelfExtractingHeader } from "../format/compressed/header.ts";
import { selfExtractingName } from "../format/compressed/names.ts";
import { type CopyResult, copyAndHash } from "../platform/copy.ts";
import { beneath, forEachLimit, openRegular, readRegularSmallSync } from "../platform/fsutil.ts";
import { loadBeside } from "../restore/locate.ts";
import { type ChainLink, resolveChain, stateProblems } from "../snapshot/chain.ts";
import { FILES_DIR } from "../snapshot/manifest.ts";
import { SMALL_FILE_MAX } from "../source/consistent.ts";

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
  opts: { set?: string } = {},
): Promise<VerifyResult> {
  const problems: VerifyProblem[] = [];
  const result: VerifyResult = { backups: names.length, files: 0, bytes: 0, problems };
  const progress = { phase: "verify" as const, files: 0, bytes: 0, totalFiles: 0, totalBytes: 0 };
  const stores = new Map<string, Promise<Map<string, Entry>>>();
  // The totals come first, from every manifest, so the progress line's percentage and ETA are the
  // whole run's from the first file on. Manifests are read again below, one at a time, rather than
  // all held in memory; one that cannot be read here is reported below.
  for (const name of names) {
    const link = await loadBeside(folder, name).catch(() => undefined);
    if (!link) continue;
    const manifest = link.manifest ?? (await readManifest(link.path).catch(() => undefined))?.manifest;
    // Only what the loop below hashes: not a backup it refuses for its set.
    const own =
      manifest && (opts.set === undefined || manifest.set === opts.set) ? ownFiles(manifest, name) : [];
    progress.totalFiles += own.length;
    progress.totalBytes += own.reduce((n, e) => n + (e.size ?? 0), 0);
  }
  onProgress?.({ ...progress });
  for (const name of names) {
    let manifest: Manifest;
    let link: Awaited<ReturnType<typeof loadBeside>>;
    let chain: ChainLink[];
    try {
      // A backup folder, or a self-extracting file lying alone (its manifest is inside it).
      link = await loadBeside(folder, name);
      if (!link) {
        problems.push({ backup: name, problem: "manifest missing: not a complete backup" });
        continue;
      }
      manifest = link.manifest ?? (await readManifest(link.path)).manifest;
      if (opts.set !== undefined && manifest.set !== opts.set) {
        problems.push({
          backup: name,
          problem: `its manifest is of set ${manifest.set}, but letter ${manifest.letter} is set ${opts.set}'s: not usable`,
        });
        continue;
      }
    } catch (e) {
      problems.push({ backup: name, problem: (e as Error).message });
      continue;
    }
    try {
      chain = await resolveChain(link, async (n) => {
        try {
          return await loadBeside(folder, n);
        } catch (e) {
          throw new Error(`depends on broken ${n} (${(e as Error).message})`);
        }
      });
    } catch (e) {
      // Its own files may be intact, but it cannot be restored: say it is the chain that fails.
      problems.push({ backup: name, problem: `broken chain: ${(e as Error).message}` });
      continue;
    }
    // What restore refuses is damage here too: the same checks of the state (snapshot/chain.ts).
    for (const p of stateProblems(manifest, chain)) {
      problems.push({ backup: name, ...(p.path === undefined ? {} : { path: p.path }), problem: p.problem });
    }
    await checkCarried(manifest, chain, stores, problems);
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
        // Read as restore reads it: from a regular file under files/, no link at any step
        // (files/ included), never waiting on a FIFO.
        const at = beneath(link.path, `${FILES_DIR}/${e.path}`, realDirs);
        // Small files whole, with synchronous calls; a file that turns out larger takes the stream.
        const small =
          (e.size ?? Number.POSITIVE_INFINITY) <= SMALL_FILE_MAX
            ? readRegularSmallSync(at, SMALL_FILE_MAX)
            : undefined;
        if (small) {
          onBytes(small.length);
          compare(e, { bytes: small.length, sha256: createHash("sha256").update(small).digest("hex") });
        } else {
          const fh = await openRegular(at);
          try {
            compare(e, await copyAndHash(fh, undefined, onBytes));
          } finally {
            await fh.close();
          }
        }
      } catch (err) {
        const why =
          errnoCode(err) === "ENOENT"
            ? "missing"
            : err instanceof BschedError
              ? `damaged: ${err.message}`
              : `unreadable (${(err as Error).message})`;
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
 * A file whose content an older backup of the chain stores (`from`): that backup must store it,
 * with the same size and sha256, or restore could not give it back. Each backup's stored files
 * are read from its manifest once per run (`stores`).
 */
async function checkCarried(
  manifest: Manifest,
  chain: ChainLink[],
  stores: Map<string, Promise<Map<string, Entry>>>,
  problems: VerifyProblem[],
): Promise<void> {
  for (const link of chain.slice(0, -1)) {
    const carried = manifest.entries.filter((e) => e.kind === "file" && e.from === link.name);
    if (carried.length === 0) continue;
    let stored = stores.get(link.name);
    if (!stored) {
      const l = link as ChainLink & { manifest?: Manifest };
      stored = (
        l.manifest ? Promise.resolve(l.manifest) : readManifest(link.path).then((r) => r.manifest)
      ).then(
        (m) =>
          new Map(m.entries.filter((e) => e.kind === "file" && e.from === m.name).map((e) => [e.path, e])),
      );
      stored.catch(() => undefined);
      stores.set(link.name, stored);
    }
    let holds: Map<string, Entry>;
    try {
      holds = await stored;
    } catch (e) {
      problems.push({ backup: manifest.name, problem: `its parent ${link.name}: ${(e as Error).message}` });
      continue;
    }
    for (const e of carried) {
      const h = holds.get(e.path);
      if (!h || h.size !== e.size || h.sha256 !== e.sha256) {
        problems.push({
          backup: manifest.name,
          path: e.path,
          problem: `its content is said to be in ${link.name}, which does not store ${h ? "this version of it" : "it"}`,
        });
      }
    }
  }
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
      path: path.basename(file),
      problem:
        errnoCode(e) === "ENOENT"
          ? `self-extracting file missing: ${file}`
          : `damaged: ${(e as Error).message}`,
    });
    return;
  }
  // Loaded only for compressed backups: tar's code is not needed for the others.
  const { forEachMember, payloadDigest } = await import("../format/compressed/reader.ts");
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
