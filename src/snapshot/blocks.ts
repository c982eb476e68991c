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
/** Block size of a file that is not SQLite (and the least for SQLite files). */
export const FIXED_BLOCK = 1 << 20;
/** A SQLite file's blocks: its page size times as many pages as make at least this. */
export const SQLITE_BLOCK_MIN = 64 << 10;
/** Bytes of a block's digest (a truncated sha256): 96 bits, 16 base64 characters, no padding. */
const DIGEST_BYTES = 12;
export const DIGEST_CHARS = 16;
/** Beside a file stored as blocks: `PATH.bsched-blocks/` (one file per block, named by its number, and `size`). */
export const BLOCKS_SUFFIX = ".bsched-blocks";
export const SIZE_FILE = "size";

export const blocksDirOf = (p: string) => `${p}${BLOCKS_SUFFIX}`;
export const blockPathOf = (p: string, k: number) => `${p}${BLOCKS_SUFFIX}/${k}`;
export const blockCount = (size: number, bs: number) => Math.ceil(size / bs);

export function blockDigest(block: Buffer): string {
  return hash("sha256", block, "buffer").subarray(0, DIGEST_BYTES).toString("base64");
}

export function digestAt(map: BlockMap, k: number): string {
  return map.digests.slice(k * DIGEST_CHARS, (k + 1) * DIGEST_CHARS);
}

/**
 * The block size of a file from its first bytes: a SQLite database changes whole pages, so its
 * blocks are whole pages (page size × n ≥ 64 KiB, measured in docs/design.md); else 1 MiB.
 */
export function blockSizeFor(head: Buffer): number {
  if (head.length >= 18 && head.subarray(0, 16).toString("latin1") === "SQLite format 3\0") {
    const raw = head.readUInt16BE(16);
    const page = raw === 1 ? 65536 : raw;
    if (page >= 512 && page <= 65536 && (page & (page - 1)) === 0) {
      return Math.max(page, SQLITE_BLOCK_MIN);
    }
  }
  return FIXED_BLOCK;
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

/** `holder` (one backup name per block) as the map's `in` list and run-length `runs`. */
export function encodeHolders(holders: string[]): { in: string[]; runs: string } {
  const names: string[] = [];
  const index = new Map<string, number>();
  const runs: string[] = [];
  let cur = -1;
  let len = 0;
  for (const h of holders) {
    let i = index.get(h);
    if (i === undefined) {
      i = names.push(h) - 1;
      index.set(h, i);
    }
    if (i === cur) len++;
    else {
      if (len > 0) runs.push(`${cur}*${len}`);
      cur = i;
      len = 1;
    }
  }
  if (len > 0) runs.push(`${cur}*${len}`);
  return { in: names, runs: runs.join(",") };
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

/** The map of a new version stored as blocks by `name`: its changed blocks here, the rest where the parent's map says. */
export function deltaMap(parent: BlockMap, name: string, digests: string, changed: number[]): BlockMap {
  const n = digests.length / DIGEST_CHARS;
  const before = holdersOf(parent);
  const mine = new Set(changed);
  const holders: string[] = [];
  for (let k = 0; k < n; k++) holders.push(mine.has(k) ? name : (before[k] as string));
  const enc = encodeHolders(holders);
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
