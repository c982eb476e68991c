import { createHash, type Hash } from "node:crypto";
import type { Readable } from "node:stream";
import { youngCollector } from "../../platform/memory.ts";
import type { S3Conn } from "./client.ts";
import { etagMismatch, type S3Where } from "./errors.ts";
import { PartPool } from "./pool.ts";

/** Parts of 5 MiB (S3's least; larger past 10,000 parts): a file up to that size is one PutObject. */
export const PART_SIZE = 5 << 20;
/**
 * Part buffers of the process (pool.ts): four requests in flight while a fifth fills, across
 * files (a put returns once its body is read: its last parts still go up while the next file
 * fills). 25 MiB: what keeps a copy under 150 MB of peak RSS with the SDK loaded (measured).
 */
const POOL_BUFFERS = 5;
/** S3's limit on the parts of one upload. */
const MAX_PARTS = 10_000;

let pool: PartPool | undefined;
/** Senders with requests or a put under way: when none has, the pool's memory is freed. */
let busy = 0;

/**
 * Fault hooks for tests (test/destination-s3.test.ts), unset otherwise: `body` replaces the bytes
 * sent for `key` (a part's number, or 0 for a whole object) after their MD5 was taken, as a
 * network damaging them would; `etag` replaces the ETag the server answered for a whole object.
 */
export const s3Faults: {
  body?: ((key: string, part: number, bytes: Buffer) => Buffer) | undefined;
  etag?: ((key: string, etag: string) => string) | undefined;
} = {};

/** Where a Sender sends: the connection, the bucket, and how a failure is worded. */
export interface SendTarget {
  conn: S3Conn;
  bucket: string;
  w: S3Where;
  fail: (e: unknown, doing: string) => Error;
  /**
   * Hold each ETag to the MD5s sent (`verify: checksum`). Off, the Content-MD5s still make the
   * server refuse damaged bytes, but ETags are not read: a bucket encrypted with SSE-KMS or SSE-C
   * answers ETags that are no MD5 (such a destination is set to `verify: read`).
   */
  etags: boolean;
}

/**
 * The uploads of one staging area. Every object goes up with its Content-MD5 (the server refuses
 * a body whose bytes differ: BadDigest), each part's MD5 taken as the part is filled (no second
 * pass over the bytes); then the object's ETag is held to what those digests make (a single
 * PUT's ETag is its MD5; a multipart one's the MD5 of the parts' digests, `-N`), and the
 * completion lists the parts by the digests computed here, so the server refuses it (InvalidPart)
 * if it stored another part. `put` returns once the body is read whole: its last requests run on
 * while the next file fills the free buffers (a file's tail no longer stalls the pipe), and a
 * failure fails the next `put` or `settle`. `cancel` cuts every request and aborts what is open.
 */
export class Sender {
  readonly #t: SendTarget;
  readonly #tasks = new Set<Promise<void>>();
  readonly #ac = new AbortController();
  /** Multipart uploads begun and not completed (key → UploadId), for cancel. */
  readonly #open = new Map<string, Promise<string | undefined>>();
  #failed: Error | undefined;

  constructor(t: SendTarget) {
    this.#t = t;
  }

  /** Read `body` (exactly `size` bytes: the caller checks it) and send it to `key`. */
  async put(key: string, body: Readable, size: number): Promise<void> {
    this.#throwIfFailed();
    busy++;
    try {
      if (size <= PART_SIZE) await this.#putWhole(key, body);
      else await this.#putParts(key, body, size);
    } finally {
      idle();
    }
  }

  /** Wait for every request; the first failure is thrown. */
  async settle(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    this.#throwIfFailed();
  }

  /** Stop: every request cut, every multipart upload begun aborted (best effort). Never fails. */
  async cancel(): Promise<void> {
    this.#failed ??= new Error("cancelled");
    this.#ac.abort();
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    const { sdk, client } = this.#t.conn;
    for (const [Key, id] of this.#open) {
      const UploadId = await id.catch(() => undefined);
      if (UploadId === undefined) continue;
      await client
        .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.#t.bucket, Key, UploadId }))
        .catch(() => undefined);
    }
    this.#open.clear();
  }

  #throwIfFailed(): void {
    if (this.#failed) throw this.#failed;
  }

  /** Run `job` in the background; its failure (worded) fails the next put or settle. */
  #track(key: string, job: () => Promise<void>): void {
    busy++;
    const p: Promise<void> = job()
      .catch((e: unknown) => {
        this.#failed ??= this.#t.fail(e, `uploading ${key}`);
      })
      .finally(() => {
        this.#tasks.delete(p);
        idle();
      });
    this.#tasks.add(p);
  }

  #take(size: number): Promise<Buffer> {
    pool ??= new PartPool(PART_SIZE, POOL_BUFFERS);
    // A part larger than the pool's (a file past 10,000 parts of 8 MiB, ~78 GiB): its own buffer.
    return size <= pool.size ? pool.take() : Promise.resolve(Buffer.allocUnsafeSlow(size));
  }

  #give(b: Buffer): void {
    if (pool && b.length === pool.size) pool.give(b);
  }

  /** One PutObject: the body read into one buffer, hashed as it fills. */
  async #putWhole(key: string, body: Readable): Promise<void> {
    const buf = await this.#take(PART_SIZE);
    const md5 = createHash("md5");
    let at = 0;
    try {
      for await (const c of body) at += fill(buf, at, c as Buffer, md5);
    } catch (e) {
      this.#give(buf);
      throw e;
    }
    const digest = md5.digest();
    this.#track(key, async () => {
      try {
        const { sdk, client } = this.#t.conn;
        const bytes = buf.subarray(0, at);
        const r = await client.send(
          new sdk.PutObjectCommand({
            Bucket: this.#t.bucket,
            Key: key,
            Body: s3Faults.body?.(key, 0, bytes) ?? bytes,
            ContentLength: at,
            ContentMD5: digest.toString("base64"),
          }),
          { abortSignal: this.#ac.signal },
        );
        this.#checkEtag(key, r.ETag, digest.toString("hex"));
      } finally {
        this.#give(buf);
      }
    });
  }

  /** A multipart upload: begun at once (while the first part fills), parts sent as they fill. */
  async #putParts(key: string, body: Readable, size: number): Promise<void> {
    const { sdk, client } = this.#t.conn;
    const partSize = Math.max(PART_SIZE, Math.ceil(size / MAX_PARTS));
    const signal = this.#ac.signal;
    // Never cut: an upload the server made but whose id never arrived could not be aborted.
    const created = client
      .send(new sdk.CreateMultipartUploadCommand({ Bucket: this.#t.bucket, Key: key }))
      .then((r) => r.UploadId);
    created.catch(() => undefined); // awaited by the parts; a body failing first never awaits it
    this.#open.set(key, created);
    const digests: Buffer[] = [];
    const parts: Promise<unknown>[] = [];
    const send = (buf: Buffer, length: number, md5: Hash) => {
      const PartNumber = digests.length + 1;
      const digest = md5.digest();
      digests.push(digest);
      const p = (async () => {
        try {
          const UploadId = await created;
          const bytes = buf.subarray(0, length);
          const r = await client.send(
            new sdk.UploadPartCommand({
              Bucket: this.#t.bucket,
              Key: key,
              UploadId,
              PartNumber,
              Body: s3Faults.body?.(key, PartNumber, bytes) ?? bytes,
              ContentLength: length,
              ContentMD5: digest.toString("base64"),
            }),
            { abortSignal: signal },
          );
          if (this.#t.etags && unquoted(r.ETag) !== digest.toString("hex")) {
            throw etagMismatch(this.#t.w, `${key} part ${PartNumber}`, r.ETag, digest.toString("hex"));
          }
        } finally {
          this.#give(buf);
        }
      })();
      parts.push(p);
      this.#track(key, () => p);
    };
    let buf: Buffer | undefined;
    let md5 = createHash("md5");
    let at = 0;
    try {
      for await (const c of body) {
        let chunk = c as Buffer;
        while (chunk.length > 0) {
          if (buf === undefined) {
            buf = await this.#take(partSize);
            this.#throwIfFailed();
          }
          const n = fill(buf, at, chunk, md5);
          at += n;
          chunk = chunk.subarray(n);
          if (at === partSize) {
            send(buf, at, md5);
            buf = undefined;
            md5 = createHash("md5");
            at = 0;
          }
        }
      }
      if (buf !== undefined && at > 0) {
        send(buf, at, md5);
        buf = undefined;
      }
    } catch (e) {
      if (buf !== undefined) this.#give(buf);
      // What went up of it is useless: its parts end, then the upload is aborted.
      this.#track(key, async () => {
        await Promise.allSettled(parts);
        const UploadId = await created.catch(() => undefined);
        if (UploadId !== undefined) {
          await client
            .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.#t.bucket, Key: key, UploadId }))
            .catch(() => undefined);
        }
        this.#open.delete(key);
      });
      throw e;
    }
    this.#track(key, async () => {
      const UploadId = await created;
      await Promise.all(parts);
      const r = await client.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket: this.#t.bucket,
          Key: key,
          UploadId,
          MultipartUpload: {
            Parts: digests.map((d, i) => ({ PartNumber: i + 1, ETag: `"${d.toString("hex")}"` })),
          },
        }),
        { abortSignal: signal },
      );
      this.#open.delete(key);
      if (!this.#t.etags) return;
      let etag = r.ETag;
      if (!unquoted(etag)) {
        // radosgw 16 answers the completion with an empty ETag (Red Hat bug 2266579): the
        // object's own, from a HEAD.
        const h = await client.send(new sdk.HeadObjectCommand({ Bucket: this.#t.bucket, Key: key }), {
          abortSignal: signal,
        });
        etag = h.ETag;
      }
      const whole = `${createHash("md5").update(Buffer.concat(digests)).digest("hex")}-${digests.length}`;
      this.#checkEtag(key, etag, whole);
    });
  }

  /** The ETag the server gave a whole object, held to the one the bytes sent make. */
  #checkEtag(key: string, etag: string | undefined, want: string): void {
    if (!this.#t.etags) return;
    const got = s3Faults.etag?.(key, etag ?? "") ?? etag;
    if (unquoted(got) !== want) throw etagMismatch(this.#t.w, key, got, want);
  }
}

/** One put or request ended: with none left in the process, the part buffers are freed (a read back follows). */
function idle(): void {
  if (--busy === 0) pool?.release();
}

/**
 * The body's chunks are copied into part buffers and dropped at once: a young-generation
 * collection every 8 MiB copied frees them before they pile up (platform/memory.ts), halving
 * what the copy's own collection (every 16 MiB) leaves lying.
 */
const collect = youngCollector(8 << 20);

/** Copy what fits of `chunk` into `buf` at `at`, hashing what was copied; returns the bytes copied. */
function fill(buf: Buffer, at: number, chunk: Buffer, md5: Hash): number {
  const n = Math.min(chunk.length, buf.length - at);
  collect(n);
  chunk.copy(buf, at, 0, n);
  md5.update(n === chunk.length ? chunk : chunk.subarray(0, n));
  return n;
}

/** An ETag as compared: without its quotes, lower case. */
function unquoted(etag: string | undefined): string {
  return (etag ?? "").replaceAll('"', "").toLowerCase();
}
