import { cancelledOr, throwIfCancelled } from "../core/cancel.ts";
import { BschedError, type ErrorCode, errnoCode } from "../core/errors.ts";
import type { BlockMap, Entry, Manifest, Progress, ProgressCallback } from "../core/types.ts";
import { readManifest, readState } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";
import { openBackupReader } from "../format/open.ts";
import { NotStored } from "../format/types.ts";
import type { CopyResult } from "../platform/copy.ts";
import { loadBeside } from "../restore/locate.ts";
import { BlockHasher, blockPathOf, DIGEST_CHARS, digestAt, isDelta, ownRuns } from "../snapshot/blocks.ts";
import { type ChainLink, resolveChain, stateProblems } from "../snapshot/chain.ts";

/** Inside a large file, a progress event every this many bytes. */
const PROGRESS_BYTES = 4 << 20;

export interface VerifyProblem {
  backup: string;
  /** The damaged or missing file; absent for a problem of the backup as a whole. */
  path?: string;
  problem: string;
  /**
   * The error code restore would fail with for this damage, where it is one: RESTORE_MISMATCH (a
   * file differs from its manifest), CHAIN_BROKEN, UNSAFE_PATH (what restore refuses). Absent for
   * the others (the message says what it is).
   */
  code?: ErrorCode;
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
 * run names every damaged or missing file. `destination`: where the backups are read from (a
 * set's own, a folder given by path, or a test's fault-injecting wrapper).
 */
export async function verifyBackups(
  destination: Destination,
  names: string[],
  onProgress?: ProgressCallback,
  /**
   * `signal`: stops the verify between backups, files and chunks; it then fails with CANCELLED
   * (a verify writes nothing, so nothing is left behind).
   */
  opts: { set?: string | undefined; signal?: AbortSignal | undefined } = {},
): Promise<VerifyResult> {
  const { signal } = opts;
  const doing = `verify of ${names.length} backup(s) in ${destination.where}`;
  const problems: VerifyProblem[] = [];
  const result: VerifyResult = { backups: names.length, files: 0, bytes: 0, problems };
  const progress: Progress = { phase: "verify", files: 0, bytes: 0, totalFiles: 0, totalBytes: 0 };
  let shownBytes = 0;
  const stores = new Map<string, Promise<Map<string, Entry>>>();
  // The totals come first, from every manifest, so the progress line's percentage and ETA are the
  // whole run's from the first file on. Manifests are read again below, one at a time, rather than
  // all held in memory; one that cannot be read here is reported below.
  for (const name of names) {
    throwIfCancelled(signal, doing);
    const link = await loadBeside(destination, name).catch(() => undefined);
    if (!link) continue;
    const manifest =
      link.manifest ?? (await readManifest(link.dest, link.name).catch(() => undefined))?.manifest;
    // Only what the loop below hashes: not a backup it refuses for its set.
    const own =
      manifest && (opts.set === undefined || manifest.set === opts.set) ? ownFiles(manifest, name) : [];
    progress.totalFiles += own.length;
    progress.totalBytes += own.reduce((n, e) => n + (e.size ?? 0), 0);
  }
  onProgress?.({ ...progress });
  for (const name of names) {
    throwIfCancelled(signal, doing);
    let manifest: Manifest;
    let link: Awaited<ReturnType<typeof loadBeside>>;
    let chain: ChainLink[];
    try {
      // A backup folder, or a self-extracting file lying alone (its manifest is inside it).
      link = await loadBeside(destination, name);
      if (!link) {
        problems.push({ backup: name, problem: "manifest missing: not a complete backup" });
        continue;
      }
      manifest = link.manifest ?? (await readManifest(link.dest, link.name)).manifest;
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
          return await loadBeside(destination, n);
        } catch (e) {
          throw new Error(`depends on broken ${n} (${(e as Error).message})`);
        }
      });
    } catch (e) {
      // Its own files may be intact, but it cannot be restored: say it is the chain that fails.
      problems.push({ backup: name, problem: `broken chain: ${(e as Error).message}`, code: "CHAIN_BROKEN" });
      continue;
    }
    // The state restore would restore: an incremental's manifest may list only its changes.
    let state: Manifest;
    try {
      state = await readState(chain, manifest);
    } catch (e) {
      problems.push({ backup: name, problem: `broken chain: ${(e as Error).message}`, code: "CHAIN_BROKEN" });
      continue;
    }
    // What restore refuses is damage here too: the same checks of the state (snapshot/chain.ts).
    for (const p of stateProblems(state, chain)) {
      problems.push({
        backup: name,
        ...(p.path === undefined ? {} : { path: p.path }),
        problem: p.problem,
        code: "UNSAFE_PATH",
      });
    }
    await checkCarried(state, chain, stores, problems);
    const own = ownFiles(manifest, name);
    const compare = (e: Entry, r: CopyResult) => {
      result.bytes += r.bytes;
      if (r.bytes !== e.size) {
        problems.push({
          backup: name,
          path: e.path,
          problem: `damaged: ${r.bytes} bytes, the manifest says ${e.size}`,
          code: "RESTORE_MISMATCH",
        });
      } else if (r.sha256 !== e.sha256) {
        problems.push({
          backup: name,
          path: e.path,
          problem: "damaged: content differs from its sha256 in the manifest",
          code: "RESTORE_MISMATCH",
        });
      }
    };
    const counted = (e: Entry) => {
      result.files++;
      progress.files++;
      shownBytes = progress.bytes;
      onProgress?.({ ...progress, current: e.path });
    };
    const onBytes = (n: number) => {
      progress.bytes += n;
      throwIfCancelled(signal, doing);
      if (progress.bytes - shownBytes >= PROGRESS_BYTES) {
        shownBytes = progress.bytes;
        onProgress?.({ ...progress });
      }
    };
    // The backup hands out its stored files in the order cheapest for its type (src/format):
    // verify never looks at the type. The last copy of a file handed out twice is what counts.
    const reader = await openBackupReader(link);
    // A read that fails (a failing disk, a dropped connection) is damage to report, and the
    // other backups are still verified.
    const whole = await reader.checkWhole(link.digest).catch((err: unknown) => ({
      problems: [{ problem: `unreadable: ${(err as Error).message}` }],
      readable: false,
    }));
    for (const p of whole.problems) problems.push({ backup: name, ...p });
    if (!whole.readable) continue;
    const last = new Map<string, CopyResult | { error: unknown }>();
    // Files stored here as blocks: each block re-hashed against its digest in the manifest.
    const blocks = blockReads(own.filter(isDelta), name);
    const plain = own.filter((e) => !isDelta(e));
    const blockProblem = (b: BlockRead, problem: string) =>
      problems.push({
        backup: name,
        path: b.file.path,
        problem: `damaged: stored blocks ${blockPathOf(b.file.path, b.start)} ${problem}`,
        code: "RESTORE_MISMATCH",
      });
    const failed = (e: Entry, err: unknown) => {
      const b = blocks.get(e.path);
      if (b) blockProblem(b, unreadable(err));
      else {
        last.set(e.path, { error: err });
        counted(e);
      }
    };
    try {
      await reader.readAll(
        [...plain, ...[...blocks.values()].map((b) => b.entry)],
        async (e, content) => {
          throwIfCancelled(signal, doing);
          const b = blocks.get(e.path);
          if (b) {
            // Each block hashed as the run streams past: a run is never held whole in memory.
            const map = b.file.blocks as BlockMap;
            const hasher = new BlockHasher(map.size);
            let bytes: number;
            try {
              if (content.data) hasher.update(content.data);
              const r = content.data
                ? { bytes: content.data.length }
                : await content.copy(async (c) => hasher.update(c), undefined, { hash: false });
              bytes = r.bytes;
            } catch (err) {
              blockProblem(b, unreadable(err));
              return;
            }
            onBytes(bytes);
            result.bytes += bytes;
            const digests = hasher.end();
            if (bytes !== b.entry.size) blockProblem(b, `is ${bytes} bytes, expected ${b.entry.size}`);
            else
              for (let i = 0; i < b.count; i++) {
                if (digests.slice(i * DIGEST_CHARS, (i + 1) * DIGEST_CHARS) !== digestAt(map, b.start + i))
                  blockProblem(b, `differs from its digest in the manifest (block ${b.start + i})`);
              }
            return;
          }
          progress.current = e.path;
          const first = !last.has(e.path);
          try {
            last.set(e.path, await content.copy(undefined, onBytes));
          } catch (err) {
            last.set(e.path, { error: err });
          }
          if (first) counted(e);
        },
        { concurrency: 4, unread: failed },
      );
    } catch (err) {
      // A cancel is not damage: whatever the reader made of it, the verify stops.
      if (signal?.aborted) throw cancelledOr(signal, err, doing);
      problems.push({ backup: name, problem: `payload unreadable: ${(err as Error).message}` });
    }
    // A cancel inside the last file's copy was caught as that file's error: not damage either.
    throwIfCancelled(signal, doing);
    for (const e of own) if (isDelta(e)) counted(e);
    for (const e of plain) {
      const r = last.get(e.path);
      if (!r) counted(e);
      if (r && !("error" in r)) compare(e, r);
      else problems.push({ backup: name, path: e.path, problem: unreadable(r?.error) });
    }
  }
  problems.sort((a, b) => (a.backup + (a.path ?? "") < b.backup + (b.path ?? "") ? -1 : 1));
  onProgress?.({ ...progress, phase: "done" });
  return result;
}

interface BlockRead {
  /** What the backup is asked for: PATH.bsched-blocks/START, a run of blocks. */
  entry: Entry;
  file: Entry;
  start: number;
  count: number;
}

/** The runs of blocks a backup stores of its files stored as blocks, by the path they are read under. */
function blockReads(deltas: Entry[], name: string): Map<string, BlockRead> {
  const out = new Map<string, BlockRead>();
  for (const file of deltas) {
    const map = file.blocks as BlockMap;
    for (const run of ownRuns(map, name)) {
      const p = blockPathOf(file.path, run.start);
      const size = Math.min(run.count * map.size, (file.size ?? 0) - run.start * map.size);
      out.set(p, {
        entry: { path: p, kind: "file", mode: 0o600, mtimeNs: "0", uid: 0, gid: 0, size, from: name },
        file,
        ...run,
      });
    }
  }
  return out;
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
        l.manifest ? Promise.resolve(l.manifest) : readManifest(link.dest, link.name).then((r) => r.manifest)
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

/** Why a stored file could not be read, in the words verify has always used. */
function unreadable(err: unknown): string {
  if (err === undefined || err instanceof NotStored) return "missing or unreadable in the payload";
  return errnoCode(err) === "ENOENT"
    ? "missing"
    : err instanceof BschedError
      ? `damaged: ${err.message}`
      : `unreadable (${(err as Error).message})`;
}
