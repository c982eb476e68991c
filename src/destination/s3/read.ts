import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BschedError } from "../../core/errors.ts";
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

/** How far ahead a positioned read fetches (kept until a read falls outside it: one per open handle). */
const WINDOW = 1 << 20;

/** Exactly `length` bytes at `position` (a GET with a Range). */
async function fetchRange(o: ObjectRef, position: number, length: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  try {
    const body = await get(o, `bytes=${position}-${position + length - 1}`);
    for await (const c of body) {
      const chunk = c as Buffer;
      at += chunk.copy(out, at, 0, Math.min(chunk.length, length - at));
    }
  } catch (e) {
    throw o.fail(e, `reading ${o.key}`);
  }
  if (at !== length) {
    throw new BschedError(
      "IO",
      `${o.key}: ${at} of the ${length} bytes asked arrived (the object changed?)`,
      {
        hint: "run it again; if it keeps failing, verify the backup",
      },
    );
  }
  return out;
}

/**
 * A stored object opened for reading: its size from a HEAD, positioned reads and streams by GETs
 * with a Range, so memory stays bounded whatever the size. Each stream is its own request:
 * destroying it aborts that request and leaves the handle usable.
 */
export function objectHandle(o: ObjectRef, size: number): ReadHandle {
  let window: { start: number; data: Buffer } | undefined;
  return {
    size,
    async read(buffer, offset, length, position) {
      const want = Math.min(length, size - position);
      if (want <= 0) return 0;
      // Readers read a file in small pieces, mostly in order (a compressed backup's frames): one
      // GET fetches a window ahead, and the pieces inside it cost no request.
      if (!(window && position >= window.start && position + want <= window.start + window.data.length)) {
        const len = Math.min(Math.max(want, WINDOW), size - position);
        window = { start: position, data: await fetchRange(o, position, len) };
      }
      return window.data.copy(buffer, offset, position - window.start, position - window.start + want);
    },
    stream(opts = {}) {
      const start = opts.start ?? 0;
      const end = Math.min(opts.end ?? size - 1, size - 1);
      if (start > end) return Readable.from([]);
      const out = new PassThrough(opts.highWaterMark ? { highWaterMark: opts.highWaterMark } : {});
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
    async close() {},
  };
}
