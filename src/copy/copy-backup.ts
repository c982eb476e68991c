import { createHash, type Hash } from "node:crypto";
import { pipeline, Transform } from "node:stream";
import { cancelledError, cancelledOr, throwIfCancelled } from "../core/cancel.ts";
import { BschedError } from "../core/errors.ts";
import { inParallel } from "../core/parallel.ts";
import type { BlockMap, Entry } from "../core/types.ts";
import { readWhole } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";
import { BLOCK_SIZE_FILE, MODE_FILE } from "../format/blocks-script.ts";
import { youngCollector } from "../platform/memory.ts";
import { fromOsError } from "../platform/os-errors.ts";
import { blocksDirOf, isDelta, ownRuns, SIZE_FILE } from "../snapshot/blocks.ts";
import { FILES_DIR, MANIFEST_FILE, parseManifest } from "../snapshot/manifest.ts";

/** A file a backup holds besides its manifest, as a copy moves it. */
export interface StoredFile {
  file: string;
  size: number;
  /** What the manifest says its sha256 is (a separate backup's files); a compressed `.sh` has none. */
  sha256?: string;
}

/** A file as it was sent: its sha256 computed from the bytes that went to the destination. */
export interface SentFile extends StoredFile {
  sent: string;
}

/**
 * What a published backup holds besides its manifest: the regular files at its top (a compressed
 * backup's `<name>.sh`) and, for the separate type, each file it stores itself under `files/` (an
 * incremental's unchanged files live in its ancestors). The manifest says what must be there; a
 * file it names that is missing fails the copy (ENOENT from open), never a short copy.
 */
export async function storedFiles(
  from: Destination,
  name: string,
  manifestText: string,
): Promise<StoredFile[]> {
  const manifest = parseManifest(manifestText, from.locationOf(name, MANIFEST_FILE));
  const out: StoredFile[] = (await from.topFiles(name))
    .filter((f) => f.name !== MANIFEST_FILE)
    .map((f) => ({
      file: f.name,
      size: f.size,
    }));
  if (manifest.type === "separate") {
    for (const e of manifest.entries) {
      if (e.kind === "file" && e.from === name && isDelta(e)) out.push(...blockFiles(e, name));
      else if (e.kind === "file" && e.from === name)
        out.push({
          file: `${FILES_DIR}/${e.path}`,
          size: e.size ?? 0,
          ...(e.sha256 !== undefined ? { sha256: e.sha256 } : {}),
        });
    }
  }
  return out;
}

/** A file stored as blocks (src/snapshot/blocks.ts): each block and the three small files beside them. */
function blockFiles(e: Entry, name: string): StoredFile[] {
  const map = e.blocks as BlockMap;
  const dir = `${FILES_DIR}/${blocksDirOf(e.path)}`;
  const out: StoredFile[] = [];
  for (const run of ownRuns(map, name)) {
    const size = Math.min(run.count * map.size, (e.size ?? 0) - run.start * map.size);
    out.push({ file: `${dir}/${run.start}`, size });
  }
  const text = (s: string) => Buffer.byteLength(`${s}\n`);
  out.push({ file: `${dir}/${BLOCK_SIZE_FILE}`, size: text(String(map.size)) });
  out.push({ file: `${dir}/${MODE_FILE}`, size: text(e.mode.toString(8)) });
  out.push({ file: `${dir}/${SIZE_FILE}`, size: text(String(e.size ?? 0)) });
  return out;
}

export interface CopyOptions {
  /** Bytes of a file being copied arrived at the destination's side of the stream. */
  onBytes?(n: number): void;
  /** A file's copy begins. */
  onFile?(file: string): void;
  signal?: AbortSignal;
  /**
   * Files sent at once (default 1): rclone's `--transfers`. Each file in flight is one stream
   * from the source and one put (on sftp more requests on the connection, on s3 more objects
   * filling the process's part pool, on smb one smbclient session each), so per-file round trips
   * overlap and a loaded machine gives the copy more than one time slice at a time.
   */
  transfers?: number;
}

/**
 * Copy one published backup from one destination to another, streamed (`transfers` files at a
 * time, no local copy), and publish it there with the very manifest bytes it had: the copy is the
 * same backup, byte for byte, under the same name. On any failure the staging area is aborted:
 * the destination holds the whole backup or nothing of it. Each file is hashed as it is sent: one
 * the manifest gives a digest for and whose bytes differ (the source is damaged) fails the copy
 * before anything is published. The first file that fails stops the others in flight (their
 * streams destroyed) and is what the copy fails with, naming that file. Checking what the
 * destination stored is the caller's (copy-set.ts check).
 */
export async function copyBackup(
  from: Destination,
  to: Destination,
  name: string,
  options: CopyOptions = {},
): Promise<{
  files: number;
  bytes: number;
  stored: SentFile[];
  manifestText: string;
  /** The destination's server checked every put against what was sent (Staging.checkedOnPut). */
  checkedOnPut: boolean;
}> {
  const doing = `copy of ${name} to ${to.name}`;
  const manifestText = (await readWhole(from, name, MANIFEST_FILE)).toString("utf8");
  const files = await storedFiles(from, name, manifestText);
  const staging = await to.stage(name);
  // Each chunk is a fresh Buffer: freed sooner than V8 would, so memory stays bounded (platform/memory.ts).
  const collect = youngCollector();
  const sent: SentFile[] = new Array(files.length);
  // Stops every file in flight: a cancel (not only between files: a file may be gigabytes), or
  // the first file that failed (the copy is lost anyway; the others need not finish).
  const stopAll = new AbortController();
  const cancel = () => stopAll.abort(cancelledError(doing));
  options.signal?.addEventListener("abort", cancel, { once: true });
  const sendOne = async (f: StoredFile, i: number) => {
    throwIfCancelled(options.signal, doing);
    if (stopAll.signal.aborted) throw stopAll.signal.reason;
    options.onFile?.(f.file);
    const h = await from.open(name, f.file);
    const hash = createHash("sha256");
    try {
      // Counted as the destination takes the bytes (never flowing ahead of it: a put may start
      // reading later), and stopped with the put when it fails.
      const body = pipeline(
        h.stream(),
        counter(hash, (n) => {
          collect(n);
          options.onBytes?.(n);
        }),
        () => undefined,
      ) as Transform;
      const stop = () => body.destroy(stopAll.signal.reason as Error);
      stopAll.signal.addEventListener("abort", stop, { once: true });
      try {
        // The size the manifest or the listing gave: a file that is not that size fails the put.
        await staging.put(f.file, body, f.size);
      } finally {
        stopAll.signal.removeEventListener("abort", stop);
        // A put that failed before it read everything: the file's stream ends before its handle.
        body.destroy();
      }
    } catch (e) {
      throw stopAll.signal.aborted ? e : failedFile(e, to, name, f.file);
    } finally {
      await h.close();
    }
    const digest = hash.digest("hex");
    if (f.sha256 !== undefined && digest !== f.sha256) {
      throw new BschedError(
        "COPY_FAILED",
        `${from.locationOf(name, f.file)} is damaged: its sha256 is not the one its manifest records, so ${name} was not copied to ${to.name}`,
        {
          hint: `run \`bsched verify\` on the set to see what else is damaged there; the next backup stores the file again`,
        },
      );
    }
    sent[i] = { ...f, sent: digest };
  };
  try {
    await inParallel(files, options.transfers ?? 1, sendOne, (e) => {
      if (!stopAll.signal.aborted) stopAll.abort(e);
    });
    throwIfCancelled(options.signal, doing);
    await staging.publish(manifestText);
  } catch (e) {
    await staging.abort();
    throw cancelledOr(options.signal, e, doing);
  } finally {
    options.signal?.removeEventListener("abort", cancel);
  }
  return {
    files: files.length,
    bytes: files.reduce((n, f) => n + f.size, 0),
    stored: sent,
    manifestText,
    checkedOnPut: staging.checkedOnPut === true,
  };
}

/**
 * A file's put that failed, named: the destination's own errors keep their code (DISK_FULL,
 * UNREACHABLE, …) and gain the file's name when they lack it; anything else is COPY_FAILED.
 */
function failedFile(e: unknown, to: Destination, name: string, file: string): unknown {
  const where = to.locationOf(name, file);
  const doing = `sending ${file} of ${name} to ${to.name}`;
  const err = fromOsError(e, { path: where, doing });
  if (err instanceof BschedError) {
    if (err.code === "CANCELLED" || err.message.includes(file)) return err;
    return new BschedError(err.code, `${doing}: ${err.message}`, {
      ...(err.hint === undefined ? {} : { hint: err.hint }),
      exitCode: err.exitCode,
      cause: e,
    });
  }
  return new BschedError("COPY_FAILED", `${doing} failed: ${(err as Error)?.message ?? String(err)}`, {
    hint: `check ${to.where}; the next backup, or \`bsched copy\`, sends the whole backup again`,
    cause: e,
  });
}

/** A pass-through that hashes each chunk and tells `onBytes` of it as it is read on. */
function counter(hash: Hash, onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}
