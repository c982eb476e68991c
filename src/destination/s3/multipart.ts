import type { Readable } from "node:stream";
import type { S3Conn } from "./client.ts";

/** Parts of 8 MiB, two uploading while a third fills: a file of any size goes up in ~24 MiB of buffers. */
export const PART_SIZE = 8 << 20;
const IN_FLIGHT = 2;
/** S3's limit on the parts of one upload. */
const MAX_PARTS = 10_000;

/**
 * Upload `body` (exactly `size` bytes: the caller checks it) to `key`: one PutObject when it fits
 * in a part, else a multipart upload. Not lib-storage's Upload: that one concatenates every part
 * into a new buffer, and the garbage grew a copy's peak RSS by ~90 MB; here a few part buffers
 * are allocated once per file and refilled. A failure aborts the multipart upload (its parts
 * would otherwise use space, unseen by any listing), best effort: the gateway may be the failure.
 */
export async function putObject(conn: S3Conn, bucket: string, key: string, body: Readable, size: number) {
  const { sdk, client } = conn;
  if (size <= PART_SIZE) {
    const buf = Buffer.allocUnsafe(size);
    let at = 0;
    for await (const c of body) at += copyInto(buf, at, c as Buffer);
    await client.send(
      new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: buf.subarray(0, at), ContentLength: at }),
    );
    return;
  }
  const partSize = Math.max(PART_SIZE, Math.ceil(size / MAX_PARTS));
  const { UploadId } = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const parts: { PartNumber: number; ETag: string }[] = [];
  const free: Buffer[] = Array.from({ length: IN_FLIGHT + 1 }, () => Buffer.allocUnsafe(partSize));
  const running = new Set<Promise<void>>();
  let failed: unknown;
  const send = (buf: Buffer, length: number, PartNumber: number) => {
    const p: Promise<void> = client
      .send(
        new sdk.UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId,
          PartNumber,
          Body: buf.subarray(0, length),
          ContentLength: length,
        }),
      )
      .then(
        (r) => {
          parts.push({ PartNumber, ETag: r.ETag ?? "" });
        },
        (e: unknown) => {
          failed ??= e;
        },
      )
      .finally(() => {
        running.delete(p);
        free.push(buf);
      });
    running.add(p);
  };
  try {
    let part = 1;
    let buf = free.pop() as Buffer;
    let at = 0;
    for await (const c of body) {
      let chunk = c as Buffer;
      while (chunk.length > 0) {
        const n = copyInto(buf, at, chunk);
        at += n;
        chunk = chunk.subarray(n);
        if (at === buf.length) {
          send(buf, at, part++);
          while (free.length === 0) await Promise.race(running);
          if (failed) throw failed;
          buf = free.pop() as Buffer;
          at = 0;
        }
      }
    }
    if (at > 0) send(buf, at, part++);
    await Promise.all(running);
    if (failed) throw failed;
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    await client.send(
      new sdk.CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (e) {
    await Promise.allSettled(running);
    await client
      .send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }))
      .catch(() => undefined);
    throw e;
  }
}

/** Copy what fits of `chunk` into `buf` at `at`; returns the bytes copied. */
function copyInto(buf: Buffer, at: number, chunk: Buffer): number {
  return chunk.copy(buf, at, 0, Math.min(chunk.length, buf.length - at));
}
