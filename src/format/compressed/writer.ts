import { createHash, hash } from "node:crypto";
import { constants as C } from "node:fs";
import fs, { type FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Entry, Manifest } from "../../core/types.ts";
import { copyAndHash, writeAll } from "../../platform/copy.ts";
import { nsToSeconds } from "../../platform/times.ts";
import { blocksDirOf, deltaMap, runsOf, SIZE_FILE, wholeMap } from "../../snapshot/blocks.ts";
import { refreshEntry, SMALL_FILE_MAX } from "../../source/consistent.ts";
import {
  blockSizeOf,
  blocksToStore,
  hashBlocks,
  parentMapOf,
  readRun,
  tapBlocks,
  wantsBlocks,
} from "../blocks.ts";
import { BLOCK_SIZE_FILE, MODE_FILE } from "../blocks-script.ts";
import { changedWhileReadWarning, retryWhileChanged, type StoredFile } from "../retry.ts";
import { type BackupWriter, skipUnreadable, type WriteJob, type WriteResult } from "../types.ts";
import { type Compressor, compressFrameSync, FrameWriter, paddingFrames } from "./frames.ts";
import { renderHeader, SIZE_WIDTH } from "./header.ts";
import { manifestMemberName, selfExtractingName } from "./names.ts";
import { blockPadding, END_OF_ARCHIVE, memberHeader } from "./tar-entry.ts";

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

/**
 * A member's tar mtime. node-tar cannot encode a negative fractional time (before 1970 with a
 * fraction of a second), so those are floored to the second: only the `sh` script sees it, bsched
 * restores every mtime from the manifest, to the microsecond.
 */
const mtimeOf = (e: Entry) => {
  const s = nsToSeconds(e.mtimeNs);
  return new Date((s < 0 ? Math.floor(s) : s) * 1000);
};

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
      // Per big file, what its first read chose (blocks or whole), kept by its re-reads.
      const chosen = new Map<string, { delta: boolean; blocks: Set<number>; starts?: Set<number> }>();
      /**
       * A file stored as blocks: members PATH.bsched-blocks/K, then block-size, mode and size
       * (with the file's mtime) for the embedded script (src/format/blocks-script.ts). Returns
       * whether a block moved since the hashing pass.
       */
      const writeBlocks = async (
        fresh: Entry,
        bs: number,
        pass: { digests: string; bytes: number },
        list: number[],
        starts: Set<number>,
        fh: FileHandle,
      ): Promise<boolean> => {
        const dir = blocksDirOf(fresh.path);
        const at = { uid: fresh.uid, gid: fresh.gid, mtime: mtimeOf(fresh) };
        await frames.write(memberHeader({ path: dir, type: "Directory", mode: 0o700, size: 0, ...at }));
        let moved = false;
        const member = async (name: string, data: Buffer) => {
          await frames.write(
            memberHeader({ path: `${dir}/${name}`, type: "File", mode: 0o600, size: data.length, ...at }),
          );
          await frames.write(data);
          await frames.write(blockPadding(data.length));
        };
        for (const run of runsOf(list, starts)) {
          const { data, same } = await readRun(fh, run, { size: bs, digests: pass.digests }, pass.bytes);
          if (!same) moved = true;
          await member(String(run.start), data);
        }
        await member(BLOCK_SIZE_FILE, Buffer.from(`${bs}\n`));
        await member(MODE_FILE, Buffer.from(`${fresh.mode.toString(8)}\n`));
        await member(SIZE_FILE, Buffer.from(`${pass.bytes}\n`));
        return moved;
      };
      // One read of a file, appended as a member; a re-read appends another that supersedes it.
      // A file that cannot be opened is `unreadable` (a warning); an error once its member has
      // begun fails the run (the payload would be broken).
      const readOnce = async (e: Entry): Promise<StoredFile & { unreadable?: unknown }> => {
        let src: Awaited<ReturnType<typeof job.reader.open>>;
        try {
          const small =
            (e.size ?? Number.POSITIVE_INFINITY) <= SMALL_FILE_MAX ? job.reader.readSmall?.(e) : undefined;
          if (small) {
            // Hashed first: small.data is a shared buffer, reused by the next small read.
            const sha256 = hash("sha256", small.data, "hex");
            const fresh = refreshEntry(e, small.st);
            const size = small.data.length;
            await frames.write(entryHeader(fresh, size));
            await frames.write(small.data);
            await frames.write(blockPadding(size));
            job.onBytes(size);
            return { entry: { ...fresh, size, sha256 }, changedWhileRead: small.changed };
          }
          src = await job.reader.open(e);
        } catch (err) {
          return { entry: e, changedWhileRead: false, unreadable: err };
        }
        try {
          const fresh = refreshEntry(e, src.st);
          const size = Number(src.st.size);
          const big = wantsBlocks(job, size);
          const parentMap = big ? parentMapOf(job, e, size) : undefined;
          const bs = big ? await blockSizeOf(src.fh, parentMap, size) : 0;
          const prior = chosen.get(e.path);
          let pass: Awaited<ReturnType<typeof hashBlocks>> | undefined;
          if (parentMap && prior?.delta !== false) {
            pass = await hashBlocks(src.fh, bs, job.onBytes);
            // A member once written cannot be taken back: after blocks, a re-read stores blocks
            // again (those stored before among them), so the last members are what the manifest says.
            const list =
              blocksToStore(parentMap, pass.digests, pass.bytes, prior?.blocks) ??
              (prior?.delta ? blocksToStore(parentMap, pass.digests, Infinity, prior.blocks) : undefined);
            if (list) {
              // Runs cut where an earlier read's members began, so that each is replaced whole.
              const starts = prior?.starts ?? new Set<number>();
              const moved = await writeBlocks(fresh, parentMap.size, pass, list, starts, src.fh);
              const now = new Set([...starts, ...runsOf(list, starts).map((r) => r.start)]);
              chosen.set(e.path, {
                delta: true,
                blocks: new Set([...(prior?.blocks ?? []), ...list]),
                starts: now,
              });
              const changedWhileRead = moved || pass.bytes !== size || (await src.changed());
              const map = deltaMap(parentMap, job.name, pass.digests, list, starts);
              return {
                entry: { ...fresh, size: pass.bytes, sha256: pass.sha256, blocks: map },
                changedWhileRead,
              };
            }
          }
          if (big) chosen.set(e.path, { delta: false, blocks: new Set() });
          const tap = big ? tapBlocks(bs, sink) : undefined;
          await frames.write(entryHeader(fresh, size));
          const r = await copyAndHash(src.fh, tap?.sink ?? sink, pass ? undefined : job.onBytes, {
            limit: size,
            padTo: size,
          });
          await frames.write(blockPadding(size));
          const moved = pass !== undefined && pass.sha256 !== r.sha256;
          const changedWhileRead = moved || r.bytes !== size || (await src.changed());
          const map = tap ? { blocks: wholeMap(job.name, bs, tap.digests()) } : {};
          return { entry: { ...fresh, size, sha256: r.sha256, ...map }, changedWhileRead };
        } finally {
          await src.close();
        }
      };
      const storeOne = async (e: Entry) => {
        job.onStart?.(e);
        // The policy every writer shares (src/format/retry.ts); nothing to discard between tries.
        const r = await retryWhileChanged(
          () => readOnce(e),
          async () => {},
        );
        if (r.unreadable !== undefined) skipUnreadable(job, failed, e.path, r.unreadable);
        else {
          stored.set(e.path, { ...r.entry, from: job.name });
          if (r.changedWhileRead) job.warn(changedWhileReadWarning(e.path, r.attempts));
        }
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

  /** A run that stops between write and finish (cancelled, failed) closes the file it kept open. */
  const abort = async (): Promise<void> => {
    const open = fh;
    fh = undefined;
    await open?.close().catch(() => undefined);
  };

  return { type: "compressed", write, finish, abort };
}

async function hashRange(fh: FileHandle, start: number, end: number): Promise<string> {
  const digest = createHash("sha256");
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let pos = start; pos < end; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
    if (bytesRead === 0) throw new Error(`file ended at ${pos}, expected ${end}`);
    digest.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return digest.digest("hex");
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
