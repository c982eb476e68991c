import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BschedError } from "../../core/errors.ts";
import { youngCollector } from "../../platform/memory.ts";
import type { ReadHandle } from "../destination.ts";
import type { S3Conn } from "./client.ts";

/** What a read needs: the connection, the object, and how to word a failure. */
export interface ObjectRef {
  conn: () => Promise<S3Conn>;
  bucket: string;
  key: string;
  fail: (e: unknown, doing: string) => Error;
}

/** The body of a GET as a Node stream (the SDK gives an IncomingMessage in Node). */
function bodyOf(body: unknown): Readable {
  if (body instanceof Readable) return body;
  return Readable.from(body as AsyncIterable<Uint8Array>);
}

/** `bytes=start-end`, or nothing for the whole object. */
async function get(o: ObjectRef, range: string | undefined, signal?: AbortSignal): Promise<Readable> {
  const { sdk, client } = await o.conn();
  const r = await client.send(
    new sdk.GetObjectCommand({ Bucket: o.bucket, Key: o.key, ...(range ? { Range: range } : {}) }),
    signal ? { abortSignal: signal } : {},
  );
  return bodyOf(r.Body);
}

/**
 * Bytes received from the gateway are fresh Buffers (the HTTP parser's chunks) that V8 frees
 * late: a young-generation collection every 4 MiB received, counted over every read of the
 * process (restore reads 8 files at once), keeps them from piling up (platform/memory.ts).
 */
const collect = youngCollector(4 << 20);

/**
 * A GET from `position` to the end of the object, read piece by piece: the one request a
 * reader reading in order needs (copyAndHash's 1 MiB reads, a compressed backup's frames).
 */
interface Sequential {
  pos: number;
  chunks: AsyncIterator<Buffer>;
  /** What the last chunk had beyond the last read. */
  left: Buffer | undefined;
  ac: AbortController;
}

async function openSequential(o: ObjectRef, position: number, size: number): Promise<Sequential> {
  const ac = new AbortController();
  try {
    const body = await get(o, `bytes=${position}-${size - 1}`, ac.signal);
    return {
      pos: position,
      chunks: (body as AsyncIterable<Buffer>)[Symbol.asyncIterator](),
      left: undefined,
      ac,
    };
  } catch (e) {
    ac.abort();
    throw o.fail(e, `reading ${o.key}`);
  }
}

/** Up to `length` bytes from `seq` into `buffer` at `offset`: stops at the end of a chunk once some are in. */
async function readFrom(
  o: ObjectRef,
  seq: Sequential,
  buffer: Buffer,
  offset: number,
  length: number,
): Promise<number> {
  let at = 0;
  while (at < length) {
    let chunk = seq.left;
    seq.left = undefined;
    if (chunk === undefined) {
      let r: IteratorResult<Buffer>;
      try {
        r = await seq.chunks.next();
      } catch (e) {
        throw o.fail(e, `reading ${o.key}`);
      }
      if (r.done) break;
      chunk = r.value;
      collect(chunk.length);
    }
    const n = chunk.copy(buffer, offset + at, 0, Math.min(chunk.length, length - at));
    at += n;
    if (n < chunk.length) seq.left = chunk.subarray(n);
  }
  seq.pos += at;
  return at;
}

/**
 * A stored object opened for reading: its size from a HEAD; positioned reads served by one GET
 * from the position asked to the end, read on while the reads follow each other (a read
 * elsewhere starts another), copied straight into the caller's buffer; streams are GETs with a
 * Range, each its own request (destroying it aborts that request and leaves the handle usable).
 * Memory stays bounded whatever the size.
 */
export function objectHandle(o: ObjectRef, size: number): ReadHandle {
  let seq: Sequential | undefined;
  // Reads one at a time: each continues where the last ended.
  let queue: Promise<unknown> = Promise.resolve();
  const drop = () => {
    seq?.ac.abort();
    seq?.chunks.return?.().catch(() => undefined);
    seq = undefined;
  };
  return {
    size,
    read(buffer, offset, length, position) {
      const job = queue.then(async () => {
        const want = Math.min(length, size - position);
        if (want <= 0) return 0;
        let got: number;
        if (seq?.pos === position) {
          // A GET left open between reads may have been cut meanwhile (an idle timeout while the
          // reader wrote elsewhere): once again from here with a new one.
          got = await readFrom(o, seq, buffer, offset, want).catch(async () => {
            drop();
            seq = await openSequential(o, position, size);
            return readFrom(o, seq, buffer, offset, want);
          });
        } else {
          drop();
          seq = await openSequential(o, position, size);
          got = await readFrom(o, seq, buffer, offset, want);
        }
        if (got === 0) {
          drop();
          throw new BschedError(
            "IO",
            `${o.key}: the object ended at ${position} of ${size} bytes (it changed?)`,
            {
              hint: "run it again; if it keeps failing, verify the backup",
            },
          );
        }
        return got;
      });
      queue = job.catch(() => undefined);
      return job;
    },
    stream(opts = {}) {
      const start = opts.start ?? 0;
      const end = Math.min(opts.end ?? size - 1, size - 1);
      if (start > end) return Readable.from([]);
      const out = new Transform({
        ...(opts.highWaterMark ? { highWaterMark: opts.highWaterMark } : {}),
        transform(chunk: Buffer, _enc, done) {
          collect(chunk.length);
          done(null, chunk);
        },
      });
      const ac = new AbortController();
      out.on("close", () => ac.abort());
      get(o, `bytes=${start}-${end}`, ac.signal).then(
        (body) =>
          pipeline(body, out).catch((e: unknown) => {
            if (!out.destroyed) out.destroy(o.fail(e, `reading ${o.key}`));
          }),
        (e: unknown) => {
          if (!out.destroyed) out.destroy(o.fail(e, `reading ${o.key}`));
        },
      );
      return out;
    },
    async close() {
      await queue;
      drop();
    },
  };
}
