import { createHash } from "node:crypto";
import { once } from "node:events";
import fs from "node:fs/promises";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { Parser, type ReadEntry } from "tar";
import { BschedError } from "../../core/errors.ts";
import { READ_REGULAR } from "../../platform/fsutil.ts";
import { ZstdFrameSplitter } from "../../platform/zstd-frames.ts";
import { type ParsedHeader, readSelfExtractingHeader } from "./header.ts";

const zstdDecompress = promisify(zlib.zstdDecompress);
const READ_CHUNK = 1 << 20;
const FRAMES_IN_FLIGHT = 3;

/**
 * The payload's bytes as they are on disk. The file was checked as a regular file when its header
 * was read; it is opened again never through a link and never blocking (READ_REGULAR), so
 * nothing swapped in meanwhile is followed or waited on. The stream closes the file.
 */
async function payloadStream(file: string, h: ParsedHeader) {
  const fh = await fs.open(file, READ_REGULAR);
  return fh.createReadStream({ start: h.payloadOffset, highWaterMark: READ_CHUNK });
}

/**
 * The payload decompressed, in order. zstd frames are decoded several at once on the
 * thread pool.
 */
async function* decompressed(file: string, h: ParsedHeader): AsyncGenerator<Buffer> {
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
export async function forEachMember(file: string, h: ParsedHeader, visit: MemberVisitor): Promise<void> {
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
    throw new BschedError("MANIFEST_INVALID", `${file}: ${failure.message}`, {
      hint: "run `bsched verify` on this backup",
    });
}

/** The manifest embedded as the payload's first member (for a file found without its folder). */
export async function readEmbeddedManifest(file: string): Promise<Buffer> {
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
    throw new BschedError("MANIFEST_INVALID", `${file}: its payload does not start with its manifest`);
  return found;
}

/** Size and sha256 of the payload as it is on disk, to compare with the header's record. */
export async function payloadDigest(
  file: string,
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
export async function payloadDamage(file: string): Promise<string | undefined> {
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
