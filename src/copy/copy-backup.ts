import { createHash, type Hash } from "node:crypto";
import { pipeline, Transform } from "node:stream";
import { cancelledError, cancelledOr, throwIfCancelled } from "../core/cancel.ts";
import { BschedError } from "../core/errors.ts";
import type { BlockMap, Entry } from "../core/types.ts";
import { readWhole } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";
import { BLOCK_SIZE_FILE, MODE_FILE } from "../format/blocks-script.ts";
import { youngCollector } from "../platform/memory.ts";
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

export interface CopyProgress {
  /** Bytes of the file being copied arrived at the destination's side of the stream. */
  onBytes?(n: number): void;
  /** A file's copy begins. */
  onFile?(file: string): void;
  signal?: AbortSignal;
}

/**
 * Copy one published backup from one destination to another, streamed (one file at a time, no
 * local copy), and publish it there with the very manifest bytes it had: the copy is the same
 * backup, byte for byte, under the same name. On any failure the staging area is aborted: the
 * destination holds the whole backup or nothing of it. Each file is hashed as it is sent: one the
 * manifest gives a digest for and whose bytes differ (the source is damaged) fails the copy before
 * anything is published. Checking what the destination stored is the caller's (copy-set.ts check).
 */
export async function copyBackup(
  from: Destination,
  to: Destination,
  name: string,
  progress: CopyProgress = {},
): Promise<{
  files: number;
  bytes: number;
  stored: SentFile[];
  manifestText: string;
  /** The destination's server checked every put against what was sent (Staging.checkedOnPut). */
  checkedOnPut: boolean;
}> {
  const manifestText = (await readWhole(from, name, MANIFEST_FILE)).toString("utf8");
  const files = await storedFiles(from, name, manifestText);
  const staging = await to.stage(name);
  // Each chunk is a fresh Buffer: freed sooner than V8 would, so memory stays bounded (platform/memory.ts).
  const collect = youngCollector();
  let bytes = 0;
  const sent: SentFile[] = [];
  try {
    for (const f of files) {
      throwIfCancelled(progress.signal, `copy of ${name} to ${to.name}`);
      progress.onFile?.(f.file);
      const h = await from.open(name, f.file);
      const hash = createHash("sha256");
      try {
        // Counted as the destination takes the bytes (never flowing ahead of it: a put may start
        // reading later), and stopped with the put when it fails.
        const body = pipeline(
          h.stream(),
          counter(hash, (n) => {
            collect(n);
            progress.onBytes?.(n);
          }),
          () => undefined,
        ) as Transform;
        // A cancel stops the file being sent, not only the next one (a file may be gigabytes).
        const stop = () => body.destroy(cancelledError(`copy of ${name} to ${to.name}`));
        progress.signal?.addEventListener("abort", stop, { once: true });
        try {
          // The size the manifest or the listing gave: a file that is not that size fails the put.
          await staging.put(f.file, body, f.size);
        } finally {
          progress.signal?.removeEventListener("abort", stop);
          // A put that failed before it read everything: the file's stream ends before its handle.
          body.destroy();
        }
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
      sent.push({ ...f, sent: digest });
      bytes += f.size;
    }
    throwIfCancelled(progress.signal, `copy of ${name} to ${to.name}`);
    await staging.publish(manifestText);
  } catch (e) {
    await staging.abort();
    throw cancelledOr(progress.signal, e, `copy of ${name} to ${to.name}`);
  }
  return {
    files: files.length,
    bytes,
    stored: sent,
    manifestText,
    checkedOnPut: staging.checkedOnPut === true,
  };
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
