import { createHash } from "node:crypto";
import { once } from "node:events";
import path from "node:path";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { Parser, type ReadEntry } from "tar";
import { BschedError, errnoCode } from "../../core/errors.ts";
import { type CopyResult, type Sink, writeAll } from "../../platform/copy.ts";
import { ZstdFrameSplitter } from "../../platform/zstd-frames.ts";
import type { ChainLink } from "../../snapshot/chain.ts";
import { SMALL_FILE_MAX } from "../../source/consistent.ts";
import { inMemory } from "../separate/reader.ts";
import { type BackupReader, NotStored, type WholeCheck } from "../types.ts";
import { type ParsedHeader, type PayloadFile, payloadOf, readSelfExtractingHeader } from "./header.ts";

const zstdDecompress = promisify(zlib.zstdDecompress);
const READ_CHUNK = 1 << 20;
/**
 * Frames decoded at once on the thread pool. One: each frame is a fresh 4 MiB buffer (and its
 * pieces), and three in flight held some 20 MB more at the peak of a restore (dataset A at scale
 * 0.1, compressed: 136–150 MB peak RSS against 151–185 MB), for no CPU time saved on 2 cores.
 */
const FRAMES_IN_FLIGHT = 1;

/**
 * The payload's bytes as they are stored, through the destination (on a local one: a regular file,
 * opened never through a link and never blocking, so nothing swapped in since its header was read
 * is followed or waited on). Destroying the stream, or its end, closes the file.
 */
async function payloadStream(file: PayloadFile, h: ParsedHeader) {
  const fh = await file.open();
  const stream = fh.stream({ start: h.payloadOffset, highWaterMark: READ_CHUNK });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    fh.close().catch(() => undefined);
  };
  stream.once("end", close);
  stream.once("close", close);
  return stream;
}

/**
 * The payload decompressed, in order. zstd frames are decoded on the thread pool,
 * FRAMES_IN_FLIGHT at once.
 */
async function* decompressed(file: PayloadFile, h: ParsedHeader): AsyncGenerator<Buffer> {
  const raw = await payloadStream(file, h);
  if (h.compressor === "gzip") {
    try {
      yield* raw.pipe(zlib.createGunzip({ chunkSize: 1 << 20 }));
    } finally {
      raw.destroy(); // closes the file also when the reader stopped early
    }
    return;
  }
  const splitter = new ZstdFrameSplitter();
  const queue: Promise<Buffer>[] = [];
  try {
    for await (const chunk of raw) {
      for (const frame of splitter.push(chunk as Buffer)) {
        const out = zstdDecompress(frame, { chunkSize: 1 << 20 });
        out.catch(() => undefined); // rejections surface when awaited in order, not as unhandled
        queue.push(out);
        while (queue.length >= FRAMES_IN_FLIGHT) yield await (queue.shift() as Promise<Buffer>);
      }
    }
    splitter.end();
    while (queue.length > 0) yield await (queue.shift() as Promise<Buffer>);
  } finally {
    for (const p of queue) p.catch(() => undefined);
    raw.destroy();
  }
}

/** Called once per member, in payload order; consumes `entry` or leaves it. Returning false stops the walk. */
export type MemberVisitor = (entry: ReadEntry) => Promise<boolean | undefined>;

/**
 * Walk the members of a self-extracting file's payload. Every warning of the tar parser is an
 * error (a damaged or hostile payload), and so is a payload that ends early.
 */
export async function forEachMember(file: PayloadFile, h: ParsedHeader, visit: MemberVisitor): Promise<void> {
  const parser = new Parser({ strict: true });
  let failure: Error | undefined;
  let stop = false;
  let current: Promise<void> = Promise.resolve();
  const fail = (e: unknown) => {
    failure ??= e instanceof Error ? e : new Error(String(e));
  };
  parser.on("warn", (code: string, message: string | Error) =>
    fail(new Error(`${code}: ${String(message)}`)),
  );
  parser.on("error", fail);
  let active: ReadEntry | undefined;
  parser.on("entry", (entry: ReadEntry) => {
    if (stop || failure) {
      entry.resume();
      return;
    }
    active = entry;
    current = current.then(async () => {
      try {
        if ((await visit(entry)) === false) stop = true;
      } catch (e) {
        fail(e);
      } finally {
        entry.resume();
      }
    });
  });
  const ended = once(parser, "end").catch(() => undefined);
  try {
    for await (const chunk of decompressed(file, h)) {
      if (stop || failure) break;
      if (!parser.write(chunk)) await Promise.race([once(parser, "drain"), ended]);
    }
  } catch (e) {
    fail(new Error(`payload damaged: ${(e as Error).message}`));
  }
  if (!stop && !failure) {
    parser.end();
    await ended;
  }
  // The payload broke off inside a member: end it, so its visitor sees a short member and returns.
  if (failure && active && !active.emittedEnd) active.end();
  await current;
  if (failure)
    throw new BschedError("MANIFEST_INVALID", `${file.label}: ${failure.message}`, {
      hint: "run `bsched verify` on this backup",
    });
}

/** The manifest embedded as the payload's first member (for a file found without its folder). */
export async function readEmbeddedManifest(file: PayloadFile): Promise<Buffer> {
  const h = await readSelfExtractingHeader(file);
  let found: Buffer | undefined;
  await forEachMember(file, h, async (entry) => {
    if (entry.path === h.manifestMember) {
      const parts: Buffer[] = [];
      for await (const c of entry) parts.push(c as Buffer);
      found = Buffer.concat(parts);
    }
    return false;
  });
  if (!found)
    throw new BschedError("MANIFEST_INVALID", `${file.label}: its payload does not start with its manifest`);
  return found;
}

/** Size and sha256 of the payload as it is on disk, to compare with the header's record. */
export async function payloadDigest(
  file: PayloadFile,
  h: ParsedHeader,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of await payloadStream(file, h)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest("hex") };
}

/**
 * What is wrong with a self-extracting file that cannot be read (its header, or its payload's size
 * or sha256 against the header), in words for the person holding it; undefined when both match.
 */
export async function payloadDamage(file: PayloadFile): Promise<string | undefined> {
  let h: ParsedHeader;
  try {
    h = await readSelfExtractingHeader(file);
  } catch (e) {
    return e instanceof BschedError
      ? "not a bsched self-extracting file (its header is missing or damaged)"
      : String(e);
  }
  const d = await payloadDigest(file, h);
  if (d.size !== h.payloadSize)
    return `payload damaged: ${d.size} bytes, its header says ${h.payloadSize} (truncated or extended)`;
  if (d.sha256 !== h.payloadSha256) return "payload damaged: its sha256 differs from the one in its header";
  return undefined;
}

/**
 * Hash a member's bytes, writing them to `out` (a file, or a sink such as holeSink's) when given.
 * `hashed` false: only write them (`sha256` is then "").
 */
export async function hashStream(
  entry: ReadEntry,
  out: Sink | undefined,
  onBytes?: (n: number) => void,
  hashed = true,
): Promise<CopyResult> {
  const hash = hashed ? createHash("sha256") : undefined;
  let bytes = 0;
  for await (const chunk of entry) {
    const b = chunk as Buffer;
    hash?.update(b);
    if (typeof out === "function") await out(b);
    else if (out) await writeAll(out, b);
    bytes += b.length;
    onBytes?.(b.length);
  }
  return { bytes, sha256: hash?.digest("hex") ?? "" };
}

/**
 * The `compressed` type's read side: the payload read once, front to back. Names come from the
 * manifest, never from the payload: a member whose name is not wanted (or is not a plain file) is
 * skipped, so a hostile payload cannot choose where anything is written.
 */
export function compressedReader(link: ChainLink): BackupReader {
  // The backup's `<name>.sh` on its destination (on a one-file destination: the file found alone).
  const file = payloadOf(link.dest, link.name);
  return {
    type: "compressed",
    name: link.name,
    async readAll(wanted, visit, opts) {
      const byPath = new Map(wanted.map((e) => [e.path, e]));
      const seen = new Set<string>();
      const header = await readSelfExtractingHeader(file);
      await forEachMember(file, header, async (entry) => {
        const e = entry.type === "File" ? byPath.get(entry.path) : undefined;
        if (!e) return undefined;
        seen.add(e.path);
        if (entry.size <= SMALL_FILE_MAX) {
          // A small member: gathered in memory, then handed out whole.
          const parts: Buffer[] = [];
          for await (const chunk of entry) parts.push(chunk as Buffer);
          await visit(e, inMemory(Buffer.concat(parts)));
        } else
          await visit(e, { copy: (out, onBytes, o) => hashStream(entry, out, onBytes, o?.hash !== false) });
        return undefined;
      });
      for (const e of wanted) if (!seen.has(e.path)) opts.unread(e, new NotStored(e.path));
    },
    async checkWhole(manifestDigest) {
      const problems: WholeCheck["problems"] = [];
      const at = path.basename(file.label);
      let header: ParsedHeader;
      try {
        header = await readSelfExtractingHeader(file);
      } catch (e) {
        problems.push({
          path: at,
          problem:
            errnoCode(e) === "ENOENT"
              ? `self-extracting file missing: ${file.label}`
              : `damaged: ${(e as Error).message}`,
        });
        return { problems, readable: false };
      }
      const d = await payloadDigest(file, header);
      if (d.size !== header.payloadSize) {
        problems.push({
          path: at,
          problem: `damaged: payload is ${d.size} bytes, its header says ${header.payloadSize} (truncated or extended)`,
        });
      } else if (d.sha256 !== header.payloadSha256) {
        problems.push({ path: at, problem: "damaged: payload sha256 differs from its header" });
      }
      // The manifest embedded first in the payload must be the one beside it (read up to there only;
      // a payload that cannot be read that far is reported when its files are read).
      await forEachMember(file, header, async (entry) => {
        if (entry.path === header.manifestMember) {
          const r = await hashStream(entry, undefined);
          if (r.sha256 !== manifestDigest) {
            problems.push({
              path: header.manifestMember,
              problem: "the manifest inside the payload differs from manifest.json beside it",
            });
          }
        }
        return false;
      }).catch(() => undefined);
      return { problems, readable: true };
    },
  };
}
