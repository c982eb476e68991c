import type { FileHandle } from "node:fs/promises";
import type { BlockMap, Entry } from "../core/types.ts";
import { copyAndHash, type Sink, writeAll } from "../platform/copy.ts";
import {
  BLOCKS_MIN,
  BlockHasher,
  blockDigest,
  blockSizeFor,
  changedBlocks,
  DIGEST_CHARS,
  digestAt,
} from "../snapshot/blocks.ts";
import type { WriteJob } from "./types.ts";

/**
 * What both writers share of block incrementals (docs/design.md "Block incrementals"): which
 * files get a block map, the hashing pass, and the choice between storing the changed blocks
 * and storing the file whole.
 */

/** The parent's block map of a file that is big enough for blocks, or undefined. */
export function parentMapOf(job: WriteJob, e: Entry, size: number): BlockMap | undefined {
  if (size < (job.blockMin ?? BLOCKS_MIN)) return undefined;
  const old = job.blockParent?.(e.path);
  return old?.kind === "file" ? old.blocks : undefined;
}

export function wantsBlocks(job: WriteJob, size: number): boolean {
  return size >= (job.blockMin ?? BLOCKS_MIN);
}

/** The first bytes of a file (its SQLite header, if it is one). */
export async function readHead(fh: FileHandle): Promise<Buffer> {
  const buf = Buffer.alloc(100);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  return buf.subarray(0, bytesRead);
}

export async function blockSizeOf(
  fh: FileHandle,
  parent: BlockMap | undefined,
  size: number,
): Promise<number> {
  return parent?.size ?? blockSizeFor(await readHead(fh), size);
}

/** A sink that also digests each block of what passes through it, in front of `out`. */
export function tapBlocks(bs: number, out: Sink | undefined): { sink: Sink; digests: () => string } {
  const hasher = new BlockHasher(bs);
  const sink = async (chunk: Buffer) => {
    hasher.update(chunk);
    if (typeof out === "function") await out(chunk);
    else if (out) await writeAll(out, chunk);
  };
  return { sink, digests: () => hasher.end() };
}

/** One read of the whole file: its block digests, sha256 and length. */
export async function hashBlocks(
  fh: FileHandle,
  bs: number,
  onBytes?: (n: number) => void,
): Promise<{ digests: string; sha256: string; bytes: number }> {
  const tap = tapBlocks(bs, undefined);
  const r = await copyAndHash(fh, tap.sink, onBytes);
  return { digests: tap.digests(), sha256: r.sha256, bytes: r.bytes };
}

/**
 * The blocks to store instead of the whole file, or undefined when storing the file whole is
 * no larger (a file rewritten wholesale). `also`: blocks an earlier read of this run already
 * stored (the compressed type cannot take them back: they are stored again).
 */
export function blocksToStore(
  parent: BlockMap,
  digests: string,
  bytes: number,
  also: Iterable<number> = [],
): number[] | undefined {
  const set = new Set(changedBlocks(parent, digests));
  const n = digests.length / DIGEST_CHARS;
  for (const k of also) if (k < n) set.add(k);
  const list = [...set].sort((a, b) => a - b);
  const storedBytes = list.reduce((t, k) => t + Math.min(parent.size, bytes - k * parent.size), 0);
  return storedBytes < bytes ? list : undefined;
}

/**
 * A run of blocks read again, and whether each is still what the hashing pass saw (the file
 * moved in between otherwise: the caller reports it as changed while read).
 */
export async function readRun(
  fh: FileHandle,
  run: { start: number; count: number },
  map: { size: number; digests: string },
  bytes: number,
): Promise<{ data: Buffer; same: boolean }> {
  const at = run.start * map.size;
  const len = Math.min(run.count * map.size, bytes - at);
  const data = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(data, got, len - got, at + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  let same = got === len;
  for (let i = 0; same && i < run.count; i++) {
    const block = data.subarray(i * map.size, (i + 1) * map.size);
    same = blockDigest(block) === digestAt(map as BlockMap, run.start + i);
  }
  return { data, same };
}
