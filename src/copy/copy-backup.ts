import { pipeline, Transform } from "node:stream";
import { cancelledError, cancelledOr, throwIfCancelled } from "../core/cancel.ts";
import { readWhole } from "../destination/backups.ts";
import type { Destination } from "../destination/destination.ts";
import { youngCollector } from "../platform/memory.ts";
import { FILES_DIR, MANIFEST_FILE, parseManifest } from "../snapshot/manifest.ts";

/** A file a backup holds besides its manifest, as a copy moves it. */
export interface StoredFile {
  file: string;
  size: number;
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
      if (e.kind === "file" && e.from === name)
        out.push({ file: `${FILES_DIR}/${e.path}`, size: e.size ?? 0 });
    }
  }
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
 * destination holds the whole backup or nothing of it. Checking the copy is the caller's
 * (verifyBackups on the destination).
 */
export async function copyBackup(
  from: Destination,
  to: Destination,
  name: string,
  progress: CopyProgress = {},
): Promise<{ files: number; bytes: number; stored: StoredFile[]; manifestText: string }> {
  const manifestText = (await readWhole(from, name, MANIFEST_FILE)).toString("utf8");
  const files = await storedFiles(from, name, manifestText);
  const staging = await to.stage(name);
  // Each chunk is a fresh Buffer: freed sooner than V8 would, so memory stays bounded (platform/memory.ts).
  const collect = youngCollector();
  let bytes = 0;
  try {
    for (const f of files) {
      throwIfCancelled(progress.signal, `copy of ${name} to ${to.name}`);
      progress.onFile?.(f.file);
      const h = await from.open(name, f.file);
      try {
        // Counted as the destination takes the bytes (never flowing ahead of it: a put may start
        // reading later), and stopped with the put when it fails.
        const body = pipeline(
          h.stream(),
          counter((n) => {
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
      bytes += f.size;
    }
    throwIfCancelled(progress.signal, `copy of ${name} to ${to.name}`);
    await staging.publish(manifestText);
  } catch (e) {
    await staging.abort();
    throw cancelledOr(progress.signal, e, `copy of ${name} to ${to.name}`);
  }
  return { files: files.length, bytes, stored: files, manifestText };
}

/** A pass-through that tells `onBytes` of each chunk as it is read on. */
function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}
