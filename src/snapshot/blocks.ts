import { hash } from "node:crypto";
import type { BlockMap, Entry } from "../core/types.ts";

/**
 * Block-level incrementals (docs/design.md "Block incrementals"). A file at least BLOCKS_MIN
 * long is recorded with a block map: per block a short digest, and which backup of the chain
 * holds that block's newest version. A changed file then stores only the blocks that differ
 * (appended blocks included) when that is smaller than the file.
 */

/** Files at least this long get a block map (runBackup's `blockMin` lowers it for tests). */
export const BLOCKS_MIN = 8 << 20;
/** Block size of a file that is not SQLite. */
export const FIXED_BLOCK = 1 << 20;
/** At most this many blocks per file when it gets its map (a 20 GB file: 80 KiB blocks, a 4 MiB map). */
export const MAX_BLOCKS = 1 << 18;
/** Bytes of a block's digest (a truncated sha256): 96 bits, 16 base64 characters, no padding. */
const DIGEST_BYTES = 12;
export const DIGEST_CHARS = (DIGEST_BYTES / 3) * 4; // 16
/** Beside a file stored as blocks: `PATH.bsched-blocks/` (one file per block, named by its number, and `size`). */
export const BLOCKS_SUFFIX = ".bsched-blocks";
export const SIZE_FILE = "size";

export const blocksDirOf = (p: string) => `${p}${BLOCKS_SUFFIX}`;
/** The stored file of a run of blocks starting at block `k`. */
export const blockPathOf = (p: string, k: number) => `${p}${BLOCKS_SUFFIX}/${k}`;
export const blockCount = (size: number, bs: number) => Math.ceil(size / bs);

/**
 * The first DIGEST_BYTES of the block's sha256 in base64. DIGEST_BYTES is a multiple of 3, so
 * those are the first DIGEST_CHARS characters of the whole digest's base64: taken from the
 * string, without the two Buffers per block that slicing the digest cost (a SQLite file hashes
 * one block per 4 KiB page: half the time of its block digests went to them).
 */
export function blockDigest(block: Buffer): string {
  return hash("sha256", block, "base64").slice(0, DIGEST_CHARS);
}

export function digestAt(map: BlockMap, k: number): string {
  return map.digests.slice(k * DIGEST_CHARS, (k + 1) * DIGEST_CHARS);
}

/**
 * The block size of a file from its first bytes and its size. A SQLite database changes whole
 * pages in place: its blocks are its pages (on dataset A's 1 % change, 4 KiB blocks store 61 MB,
 * 64 KiB ones 196 MB, 1 MiB ones 217 MB: docs/design.md "Block incrementals"). Other files
 * (logs, mostly appended) get 1 MiB. Either is doubled until the file has at most MAX_BLOCKS.
 */
export function blockSizeFor(head: Buffer, size: number): number {
  let bs = FIXED_BLOCK;
  if (head.length >= 18 && head.subarray(0, 16).toString("latin1") === "SQLite format 3\0") {
    const raw = head.readUInt16BE(16);
    const page = raw === 1 ? 65536 : raw;
    if (page >= 512 && page <= 65536 && (page & (page - 1)) === 0) bs = page;
  }
  while (Math.ceil(size / bs) > MAX_BLOCKS) bs *= 2;
  return bs;
}

/** Digests of consecutive blocks of a stream given in chunks of any length. */
export class BlockHasher {
  readonly #bs: number;
  readonly #pending: Buffer;
  #pendingLen = 0;
  readonly #out: string[] = [];
  constructor(bs: number) {
    this.#bs = bs;
    this.#pending = Buffer.allocUnsafe(bs);
  }
  update(chunk: Buffer): void {
    let off = 0;
    if (this.#pendingLen > 0) {
      const n = Math.min(this.#bs - this.#pendingLen, chunk.length);
      chunk.copy(this.#pending, this.#pendingLen, 0, n);
      this.#pendingLen += n;
      off = n;
      if (this.#pendingLen < this.#bs) return;
      this.#out.push(blockDigest(this.#pending));
      this.#pendingLen = 0;
    }
    for (; off + this.#bs <= chunk.length; off += this.#bs) {
      this.#out.push(blockDigest(chunk.subarray(off, off + this.#bs)));
    }
    if (off < chunk.length) {
      chunk.copy(this.#pending, 0, off);
      this.#pendingLen = chunk.length - off;
    }
  }
  /** The digests, one per block (the last may be short), packed in one string. */
  end(): string {
    if (this.#pendingLen > 0) this.#out.push(blockDigest(this.#pending.subarray(0, this.#pendingLen)));
    this.#pendingLen = 0;
    return this.#out.join("");
  }
}

/** For each block, the index into `map.in` of the backup that holds it. */
export function decodeRuns(map: BlockMap): number[] {
  const out: number[] = [];
  if (map.runs === "") return out;
  for (const run of map.runs.split(",")) {
    const [i, n] = run.split("*").map(Number) as [number, number];
    for (let j = 0; j < n; j++) out.push(i);
  }
  return out;
}

/**
 * `holders` (one backup name per block) as the map's `in` list and run-length `runs`. A run
 * also ends before each block of `breaks`: the backup storing blocks keeps one run per stored
 * file in its own map.
 */
export function encodeHolders(
  holders: string[],
  breaks: Set<number> = new Set(),
): { in: string[]; runs: string } {
  const names: string[] = [];
  const index = new Map<string, number>();
  const runs: string[] = [];
  let cur = -1;
  let len = 0;
  for (let k = 0; k < holders.length; k++) {
    const h = holders[k] as string;
    let i = index.get(h);
    if (i === undefined) {
      i = names.push(h) - 1;
      index.set(h, i);
    }
    if (i === cur && !breaks.has(k)) len++;
    else {
      if (len > 0) runs.push(`${cur}*${len}`);
      cur = i;
      len = 1;
    }
  }
  if (len > 0) runs.push(`${cur}*${len}`);
  return { in: names, runs: runs.join(",") };
}

/**
 * The stored runs of a file stored as blocks, from the map of the backup that stored them: each
 * run held by `name` is one file `PATH.bsched-blocks/START` of `count` consecutive blocks.
 */
export function ownRuns(map: BlockMap, name: string): { start: number; count: number }[] {
  const me = map.in.indexOf(name);
  const out: { start: number; count: number }[] = [];
  if (me < 0 || map.runs === "") return out;
  let k = 0;
  for (const run of map.runs.split(",")) {
    const [i, n] = run.split("*").map(Number) as [number, number];
    if (i === me) out.push({ start: k, count: n });
    k += n;
  }
  return out;
}

/**
 * Maximal runs of consecutive blocks of `list` (sorted), also cut at each of `starts` (the run
 * starts a previous read of the same file stored: a member stored again must replace them).
 */
export function runsOf(list: number[], starts: Set<number> = new Set()): { start: number; count: number }[] {
  const out: { start: number; count: number }[] = [];
  for (const k of list) {
    const last = out.at(-1);
    if (last && last.start + last.count === k && !starts.has(k)) last.count++;
    else out.push({ start: k, count: 1 });
  }
  return out;
}

/** The backup name holding each block of the map. */
export function holdersOf(map: BlockMap): string[] {
  return decodeRuns(map).map((i) => map.in[i] as string);
}

/** A file stored as blocks in its `from` backup (not whole there): restore assembles it. */
export function isDelta(e: Entry): boolean {
  return e.kind === "file" && e.blocks !== undefined && e.blocks.base !== e.from;
}

/** A map for a file stored whole by backup `name`. */
export function wholeMap(name: string, bs: number, digests: string): BlockMap {
  const n = digests.length / DIGEST_CHARS;
  return { size: bs, digests, in: [name], runs: n > 0 ? `0*${n}` : "", base: name };
}

/**
 * Which blocks of the new version differ from the parent's map: those whose digest changed,
 * and every block past the parent's end.
 */
export function changedBlocks(parent: BlockMap, digests: string): number[] {
  const n = digests.length / DIGEST_CHARS;
  const had = parent.digests.length / DIGEST_CHARS;
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    if (k >= had) out.push(k);
    else if (digests.slice(k * DIGEST_CHARS, (k + 1) * DIGEST_CHARS) !== digestAt(parent, k)) out.push(k);
  }
  // The last block of the parent may have been short and is now longer: its digest changed, so
  // it is already listed.
  return out;
}

/**
 * The map of a new version stored as blocks by `name`: its changed blocks here (one run per
 * stored file: runsOf(changed, starts)), the rest where the parent's map says.
 */
export function deltaMap(
  parent: BlockMap,
  name: string,
  digests: string,
  changed: number[],
  starts: Set<number> = new Set(),
): BlockMap {
  const n = digests.length / DIGEST_CHARS;
  const before = holdersOf(parent);
  const mine = new Set(changed);
  const holders: string[] = [];
  for (let k = 0; k < n; k++) holders.push(mine.has(k) ? name : (before[k] as string));
  // Its own runs cut where its stored files begin (ownRuns reads them back).
  const breaks = new Set(runsOf(changed, starts).map((r) => r.start));
  const enc = encodeHolders(holders, breaks);
  const map: BlockMap = { size: parent.size, digests, ...enc };
  if (parent.base !== undefined && enc.in.includes(parent.base)) map.base = parent.base;
  return map;
}

const RUNS = /^(\d+\*\d+(,\d+\*\d+)*)?$/;
const B64 = /^[A-Za-z0-9+/]*$/;

/** Why a manifest's block map cannot be used for a file of `size` bytes, or undefined. */
export function blockMapProblem(
  m: unknown,
  size: number,
  isName: (n: string) => boolean,
): string | undefined {
  if (m === null || typeof m !== "object" || Array.isArray(m)) return "blocks is not an object";
  const o = m as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!["size", "digests", "in", "runs", "base"].includes(k)) return `blocks: unknown key ${k}`;
  const bs = o.size;
  if (typeof bs !== "number" || !Number.isSafeInteger(bs) || bs < 512 || bs > 1 << 30)
    return "blocks: bad size";
  const n = blockCount(size, bs);
  if (typeof o.digests !== "string" || o.digests.length !== n * DIGEST_CHARS || !B64.test(o.digests))
    return "blocks: digests do not match the file's size";
  if (!Array.isArray(o.in) || o.in.some((x) => typeof x !== "string" || !isName(x))) return "blocks: bad in";
  if (typeof o.runs !== "string" || !RUNS.test(o.runs)) return "blocks: bad runs";
  let total = 0;
  if (o.runs !== "") {
    for (const run of o.runs.split(",")) {
      const [i, c] = run.split("*").map(Number) as [number, number];
      if (i >= o.in.length || c === 0) return "blocks: bad runs";
      total += c;
    }
  }
  if (total !== n) return "blocks: runs do not cover the file";
  if (o.base !== undefined && (typeof o.base !== "string" || !isName(o.base))) return "blocks: bad base";
  return undefined;
}

/** Bytes of the blocks of `e` that backup `name` holds (a delta's stored bytes). */
export function storedBlockBytes(e: Entry, name: string): number {
  const map = e.blocks;
  if (!map) return 0;
  const holders = holdersOf(map);
  let n = 0;
  for (let k = 0; k < holders.length; k++)
    if (holders[k] === name) n += Math.min(map.size, (e.size ?? 0) - k * map.size);
  return n;
}
