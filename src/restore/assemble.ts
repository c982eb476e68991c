import { createHash } from "node:crypto";
import { constants as C, writeSync } from "node:fs";
import type fs from "node:fs/promises";
import type { BlockMap, Entry, Manifest } from "../core/types.ts";
import { readManifest } from "../destination/backups.ts";
import type { StoredContent } from "../format/types.ts";
import { type CopyResult, copyAndHash, writeAll } from "../platform/copy.ts";
import { blockPathOf, DIGEST_CHARS, holdersOf, ownRuns } from "../snapshot/blocks.ts";
import type { ChainLink } from "../snapshot/chain.ts";

/**
 * Restoring the files stored as blocks (docs/design.md "Block incrementals", "Restore"): each is
 * created at its size, then every backup of the chain is read once, newest first, and each block
 * is written once, from the backup that holds its newest version. The backup that holds the file
 * whole (its `base`, the oldest holder) comes last: while its stream passes, in file order, the
 * whole file's sha256 is computed from the blocks it writes and, for the blocks newer backups
 * wrote before, from what they wrote (read back: a fraction of the file). So a chain costs one
 * pass over the file, as a full's restore does, and the whole-file check is kept.
 */

/** A file being assembled from blocks: its entry, its open output, which backup holds each block. */
export interface Assembled {
  e: Entry;
  fh: fs.FileHandle;
  holders: string[];
  /**
   * The whole file's size and sha256, when its base's stream computed them in file order (every
   * other holder newer than the base, so all had written first); else read back at the end.
   */
  result?: CopyResult;
  inOrder: boolean;
}

/**
 * Open (create) each file of `deltas` at its size. `createExclusive` opens a new file never
 * through a link (replacing what stands there when overwriting).
 */
export async function openAssembled(
  deltas: Entry[],
  chain: ChainLink[],
  create: (e: Entry, access: number) => Promise<fs.FileHandle>,
): Promise<Assembled[]> {
  const index = new Map(chain.map((l, i) => [l.name, i]));
  const out: Assembled[] = [];
  try {
    for (const e of deltas) {
      // Read and write: the blocks newer backups wrote are read back for the whole-file sha256.
      const fh = await create(e, C.O_RDWR);
      const holders = holdersOf(e.blocks as BlockMap);
      const base = index.get(e.blocks?.base ?? "");
      const inOrder = base !== undefined && holders.every((h) => (index.get(h) ?? -1) >= base);
      out.push({ e, fh, holders, inOrder });
      await fh.truncate(e.size ?? 0);
    }
  } catch (err) {
    for (const a of out) await a.fh.close().catch(() => undefined);
    throw err;
  }
  return out;
}

/** The whole file's size and sha256: from its base's pass, or read back now. */
export async function assembledResult(a: Assembled): Promise<CopyResult> {
  return a.result ?? copyAndHash(a.fh, undefined);
}

/**
 * The maps that backup `link` wrote for the assembled files it stores blocks of (from its own
 * manifest, read once): they say how its blocks are cut into stored runs.
 */
export async function ownMaps(
  assembled: Assembled[],
  link: ChainLink,
  newest: Manifest,
): Promise<Map<string, BlockMap>> {
  const paths = new Set(
    assembled
      .filter((a) => a.e.blocks?.base !== link.name && a.holders.includes(link.name))
      .map((a) => a.e.path),
  );
  const out = new Map<string, BlockMap>();
  if (paths.size === 0) return out;
  const m = link.name === newest.name ? newest : (await readManifest(link.dest, link.name)).manifest;
  for (const e of m.entries) {
    if (paths.has(e.path) && e.kind === "file" && e.from === link.name && e.blocks) out.set(e.path, e.blocks);
  }
  return out;
}

/** What restore asks one backup for, for the assembled files: an entry to read, and where it goes. */
export interface Part {
  entry: Entry;
  write(content: StoredContent): Promise<void>;
}

/**
 * Cut `len` bytes at file offset `at` into segments of consecutive blocks that are all `mine`
 * or all not, up to `size` (bytes past it are dropped: the file shrank since).
 */
function segments(
  at: number,
  len: number,
  bs: number,
  size: number,
  mine: (k: number) => boolean,
): { from: number; to: number; own: boolean }[] {
  const out: { from: number; to: number; own: boolean }[] = [];
  const end = Math.min(at + len, size);
  for (let pos = at; pos < end; ) {
    const own = mine(Math.floor(pos / bs));
    let to = (Math.floor(pos / bs) + 1) * bs;
    while (to < end && mine(to / bs) === own) to += bs;
    to = Math.min(to, end);
    out.push({ from: pos, to, own });
    pos = to;
  }
  return out;
}

/** Feed a stored file's content, chunk by chunk, to `push` (given each chunk's offset in it). */
async function streamContent(
  content: StoredContent,
  push: (chunk: Buffer, at: number) => Promise<void>,
  onBytes: (n: number) => void,
): Promise<void> {
  let at = 0;
  const take = async (chunk: Buffer) => {
    const here = at;
    at += chunk.length;
    await push(chunk, here);
  };
  if (content.data) {
    await take(content.data);
    onBytes(content.data.length);
  } else await content.copy(take, onBytes, { hash: false });
}

function writeAllSync(fd: number, data: Buffer, position: number): void {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off, position + off);
}

/** Read exactly `len` bytes at `pos` into `buf` (fewer at the end of the file). */
async function readAt(fh: fs.FileHandle, buf: Buffer, len: number, pos: number): Promise<number> {
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * The stream of the whole file from its base: the blocks the base still holds are written. When
 * `a.inOrder`, the whole file is hashed on the way: each chunk's span is read back first when newer
 * backups wrote some of its blocks, the base's blocks laid over it, and the span written and
 * hashed whole (one read and one write per chunk, however scattered the newer blocks); after the
 * stream, the rest of the file (blocks past the base's end) is read back and hashed.
 */
function basePart(a: Assembled, name: string, mine: boolean[], onBytes: (n: number) => void): Part {
  const map = a.e.blocks as BlockMap;
  const bs = map.size;
  const size = a.e.size ?? 0;
  const { blocks: _b, ...plain } = a.e;
  const own = (k: number) => mine[k] === true;
  return {
    entry: { ...plain, size: undefined, from: name } as Entry,
    async write(content) {
      if (!a.inOrder) {
        await streamContent(
          content,
          async (chunk, at) => {
            for (const s of segments(at, chunk.length, bs, size, own))
              if (s.own) await writeAll(a.fh, chunk.subarray(s.from - at, s.to - at), s.from);
          },
          onBytes,
        );
        return;
      }
      const hash = createHash("sha256");
      let hashed = 0;
      let span = Buffer.alloc(0);
      await streamContent(
        content,
        async (chunk, at) => {
          const segs = segments(at, chunk.length, bs, size, own);
          const last = segs.at(-1);
          if (!last) return;
          const len = last.to - at;
          if (segs.every((s) => s.own)) {
            const data = chunk.subarray(0, len);
            await writeAll(a.fh, data, at);
            hash.update(data);
          } else {
            if (span.length < len) span = Buffer.allocUnsafe(Math.max(len, 1 << 20));
            const got = await readAt(a.fh, span, len, at);
            if (got < len) span.fill(0, got, len);
            for (const s of segs) if (s.own) chunk.copy(span, s.from - at, s.from - at, s.to - at);
            const data = span.subarray(0, len);
            if (segs.some((s) => s.own)) await writeAll(a.fh, data, at);
            hash.update(data);
          }
          hashed = last.to;
        },
        onBytes,
      );
      // Past the base's end: blocks newer backups appended, read back to the file's end.
      if (span.length < 1 << 20) span = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const got = await readAt(a.fh, span, span.length, hashed);
        if (got === 0) break;
        hash.update(span.subarray(0, got));
        hashed += got;
      }
      a.result = { bytes: hashed, sha256: hash.digest("hex") };
    },
  };
}

/**
 * The reads of one backup for the assembled files: from the backup that stores a file whole
 * (its `base`), that file, of which only the blocks it still holds are written; from a backup
 * that stores blocks, each run it holds (`PATH.bsched-blocks/K`), its wanted blocks written at
 * their place as its chunks arrive.
 */
export function blockParts(
  assembled: Assembled[],
  name: string,
  own: Map<string, BlockMap>,
  onBytes: (n: number) => void,
): Map<string, Part> {
  const parts = new Map<string, Part>();
  for (const a of assembled) {
    const map = a.e.blocks as BlockMap;
    const bs = map.size;
    const size = a.e.size ?? 0;
    const mine = a.holders.map((h) => h === name);
    if (!mine.includes(true)) continue;
    if (map.base === name) {
      parts.set(a.e.path, basePart(a, name, mine, onBytes));
      continue;
    }
    // The runs this backup stored (its own map, src/snapshot/blocks.ts ownRuns): each read once.
    const stored = own.get(a.e.path);
    if (!stored) continue;
    for (const run of ownRuns(stored, name)) {
      let wanted = false;
      for (let k = run.start; k < run.start + run.count && !wanted; k++) wanted = mine[k] === true;
      if (!wanted) continue;
      const p = blockPathOf(a.e.path, run.start);
      const first = run.start * bs;
      const len = Math.min(run.count * bs, (stored.digests.length / DIGEST_CHARS) * bs, size - first);
      const end = first + len;
      parts.set(p, {
        entry: { path: p, kind: "file", mode: 0o600, mtimeNs: "0", uid: 0, gid: 0, size: len, from: name },
        async write(content) {
          await streamContent(
            content,
            async (chunk, at) => {
              for (const s of segments(first + at, chunk.length, bs, end, (k) => mine[k] === true)) {
                if (!s.own) continue;
                const data = chunk.subarray(s.from - first - at, s.to - first - at);
                // A run read whole (most are a page or a few): written with one synchronous call,
                // no thread-pool round trip (as restore writes small files).
                if (content.data) writeAllSync(a.fh.fd, data, s.from);
                else await writeAll(a.fh, data, s.from);
              }
            },
            onBytes,
          );
        },
      });
    }
  }
  return parts;
}
