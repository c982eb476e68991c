import { createHash } from "node:crypto";
import { constants as C } from "node:fs";
import fs, { type FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Entry, Manifest } from "../../core/types.ts";
import { copyAndHash, writeAll } from "../../platform/copy.ts";
import { nsToSeconds } from "../../platform/times.ts";
import { refreshEntry, SMALL_FILE_MAX } from "../../source/consistent.ts";
import { type BackupWriter, skipUnreadable, type WriteJob, type WriteResult } from "../types.ts";
import { type Compressor, compressFrameSync, FrameWriter, paddingFrames } from "./frames.ts";
import { renderHeader, SIZE_WIDTH } from "./header.ts";
import { manifestMemberName, selfExtractingName } from "./names.ts";
import { blockPadding, END_OF_ARCHIVE, memberHeader } from "./tar-entry.ts";

/** Tries per file that keeps changing while read; each retry appends a member that supersedes the last. */
const READ_ATTEMPTS = 3;

function treeOrder(a: Entry, b: Entry): number {
  const x = a.path.replaceAll("/", "\0");
  const y = b.path.replaceAll("/", "\0");
  return x < y ? -1 : x > y ? 1 : 0;
}

const TAR_TYPE = { file: "File", dir: "Directory", symlink: "SymbolicLink" } as const;

/** The tar header of an entry of the state (a file's `size` is the content that follows). */
function entryHeader(e: Entry, size: number): Buffer {
  return memberHeader({
    path: e.path,
    type: TAR_TYPE[e.kind],
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size,
    mtime: mtimeOf(e),
    linkpath: e.kind === "symlink" ? (e.target ?? "") : undefined,
  });
}

const mtimeOf = (e: Entry) => new Date(nsToSeconds(e.mtimeNs) * 1000);

function manifestMember(name: string, text: string, mtime: Date): Buffer {
  const data = Buffer.from(text);
  const head = memberHeader({
    path: manifestMemberName(name),
    type: "File",
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime,
  });
  return Buffer.concat([head, data, blockPadding(data.length)]);
}

/**
 * The `compressed` type: one self-extracting file per backup (docs/design.md). The manifest
 * must be the payload's first member but is only known at the end, so room for it is
 * reserved up front from a draft of it; the file contents' frames follow that room.
 */
export function compressedWriter(
  compressor: Compressor,
  /** `manifestReserve`: a test forces the rare path where the manifest outgrows its room. */
  options: { manifestReserve?: number | undefined } = {},
): BackupWriter {
  let fh: FileHandle | undefined;
  let file = "";
  let headerLen = 0;
  let sizeAt = 0;
  let digestAt = 0;
  let reserved = 0;
  let contentEnd = 0;

  const write = async (job: WriteJob): Promise<WriteResult> => {
    file = path.join(job.tmp, selfExtractingName(job.name));
    fh = await fs.open(file, C.O_RDWR | C.O_CREAT | C.O_EXCL, 0o755);
    const header = renderHeader({
      name: job.name,
      set: job.set,
      mode: job.mode,
      parent: job.parent,
      parentDigest: job.parentDigest,
      ancestors: job.ancestors,
      compressor,
      manifestMember: manifestMemberName(job.name),
      deletions: job.deletions,
    });
    headerLen = header.bytes.length;
    sizeAt = header.sizeAt;
    digestAt = header.digestAt;
    await writeAll(fh, header.bytes, 0);
    const draft = compressFrameSync(compressor, manifestMember(job.name, job.draftManifest(), new Date(0)));
    reserved = options.manifestReserve ?? Math.ceil(draft.length * 1.25) + 16384;

    const frames = new FrameWriter(fh, headerLen + reserved, compressor);
    const stored = new Map<string, Entry>();
    const failed = new Set<string>();
    try {
      const sink = (chunk: Buffer) => frames.write(chunk);
      const storeOne = async (e: Entry) => {
        let result: Entry | undefined;
        const settle = (fresh: Entry, size: number, sha256: string, changed: boolean, attempt: number) => {
          if (changed && attempt < READ_ATTEMPTS) return;
          result = { ...fresh, size, sha256, from: job.name };
          if (changed) {
            job.warn({
              path: e.path,
              code: "CHANGED_WHILE_READ",
              message: `file kept changing while read (${READ_ATTEMPTS} tries); the last copy is kept and may be inconsistent`,
            });
          }
        };
        for (let attempt = 1; attempt <= READ_ATTEMPTS && !result; attempt++) {
          let src: Awaited<ReturnType<typeof job.reader.open>>;
          try {
            const small =
              (e.size ?? Number.POSITIVE_INFINITY) <= SMALL_FILE_MAX ? job.reader.readSmall?.(e) : undefined;
            if (small) {
              // Hashed first: small.data is a shared buffer, reused by the next small read.
              const sha256 = createHash("sha256").update(small.data).digest("hex");
              const fresh = refreshEntry(e, small.st);
              const size = small.data.length;
              await frames.write(entryHeader(fresh, size));
              await frames.write(small.data);
              await frames.write(blockPadding(size));
              job.onBytes(size);
              settle(fresh, size, sha256, small.changed, attempt);
              continue;
            }
            src = await job.reader.open(e);
          } catch (err) {
            skipUnreadable(job, failed, e.path, err);
            break;
          }
          try {
            const fresh = refreshEntry(e, src.st);
            const size = Number(src.st.size);
            await frames.write(entryHeader(fresh, size));
            const r = await copyAndHash(src.fh, sink, job.onBytes, { limit: size, padTo: size });
            await frames.write(blockPadding(size));
            settle(fresh, size, r.sha256, r.bytes !== size || (await src.changed()), attempt);
          } finally {
            await src.close();
          }
        }
        if (result) stored.set(e.path, result);
        job.onFile(e);
      };
      // Tree order (a folder, then everything under it): GNU tar sets a folder's mtime once it
      // meets a member outside it, so a later member inside would move it again.
      for (const e of [...job.dirs, ...job.files, ...job.symlinks].sort(treeOrder)) {
        if (e.kind === "file") await storeOne(e);
        else await frames.write(entryHeader(e, 0));
      }
      await frames.write(END_OF_ARCHIVE);
      contentEnd = await frames.close();
    } catch (err) {
      frames.abandon();
      await fh.close();
      fh = undefined;
      throw err;
    }
    return { stored, failed };
  };

  const finish = async (job: WriteJob, manifest: Manifest, manifestText: string): Promise<void> => {
    if (!fh) throw new Error("compressed writer: finish without write");
    const first = compressFrameSync(
      compressor,
      manifestMember(job.name, manifestText, new Date(manifest.finishedAt)),
    );
    const pad = paddingFrames(compressor, reserved - first.length);
    if (pad) {
      await writeAll(fh, first, headerLen);
      await writeAll(fh, pad, headerLen + first.length);
    } else {
      // The manifest outgrew its room (many warnings): rebuild the file with the frames moved up.
      fh = await reassemble(fh, file, headerLen, reserved, contentEnd, first);
      contentEnd = contentEnd - reserved + first.length;
    }
    const size = contentEnd - headerLen;
    const digest = await hashRange(fh, headerLen, contentEnd);
    await writeAll(fh, Buffer.from(String(size).padEnd(SIZE_WIDTH)), sizeAt);
    await writeAll(fh, Buffer.from(digest), digestAt);
    await fh.sync();
    await fh.close();
    fh = undefined;
  };

  return { type: "compressed", write, finish };
}

async function hashRange(fh: FileHandle, start: number, end: number): Promise<string> {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let pos = start; pos < end; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
    if (bytesRead === 0) throw new Error(`file ended at ${pos}, expected ${end}`);
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return hash.digest("hex");
}

async function reassemble(
  old: FileHandle,
  file: string,
  headerLen: number,
  reserved: number,
  contentEnd: number,
  first: Buffer,
): Promise<FileHandle> {
  const next = `${file}.reassemble`;
  const fh = await fs.open(next, C.O_RDWR | C.O_CREAT | C.O_EXCL, 0o755);
  const buf = Buffer.allocUnsafe(1 << 20);
  const { bytesRead } = await old.read(buf, 0, headerLen, 0);
  await writeAll(fh, buf.subarray(0, bytesRead), 0);
  await writeAll(fh, first, headerLen);
  let to = headerLen + first.length;
  for (let pos = headerLen + reserved; pos < contentEnd; ) {
    const r = await old.read(buf, 0, Math.min(buf.length, contentEnd - pos), pos);
    await writeAll(fh, buf.subarray(0, r.bytesRead), to);
    pos += r.bytesRead;
    to += r.bytesRead;
  }
  await old.close();
  await fs.rename(next, file);
  return fh;
}
