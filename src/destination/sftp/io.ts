import { Readable, Writable } from "node:stream";
import { BschedError } from "../../core/errors.ts";
import type { RemoteFs, RemoteHandle } from "./remote.ts";

/**
 * One SFTP request moves at most this much (OpenSSH serves 255 KiB; ssh2 splits larger ones
 * into a sequence of requests, which would wait for each other).
 */
const PIECE = 64 * 1024;
/** Requests in flight per stream: a round trip per piece would make throughput a matter of latency. */
const WINDOW = 32;

/**
 * The bytes of an open remote file from `start` to `end` inclusive, with WINDOW reads in flight
 * (bounded memory: WINDOW × PIECE). A short read (which a server may give) is completed before
 * the next piece is passed on, so the bytes come out in order and whole; closing the stream
 * leaves the handle open.
 */
export function remoteRange(
  fs: RemoteFs,
  f: RemoteHandle,
  size: number,
  opts: { start?: number; end?: number; highWaterMark?: number },
): Readable {
  const start = opts.start ?? 0;
  const stop = Math.min(size, opts.end === undefined ? size : opts.end + 1);
  let next = start;
  let busy = false;
  let ended = false;
  const inFlight: { pos: number; len: number; buf: Buffer; n: Promise<number> }[] = [];
  const issue = () => {
    while (inFlight.length < WINDOW && next < stop) {
      const len = Math.min(PIECE, stop - next);
      const buf = Buffer.allocUnsafe(len);
      const n = fs.read(f, buf, 0, len, next);
      n.catch(() => undefined); // awaited below, in order; a destroyed stream leaves it unobserved
      inFlight.push({ pos: next, len, buf, n });
      next += len;
    }
  };
  /** The next piece, whole (a short read completed), or undefined at the end. */
  const nextPiece = async (): Promise<Buffer | undefined> => {
    issue();
    const p = inFlight.shift();
    if (p === undefined) return undefined;
    let got = await p.n;
    while (got < p.len) {
      const more = await fs.read(f, p.buf, got, p.len - got, p.pos + got);
      if (more === 0) break;
      got += more;
    }
    // The file ended early (it shrank): what there is, then the end.
    if (got < p.len) {
      inFlight.length = 0;
      next = stop;
    }
    return p.buf.subarray(0, got);
  };
  return new Readable({
    highWaterMark: opts.highWaterMark ?? PIECE,
    read() {
      if (busy || ended) return;
      busy = true;
      nextPiece().then(
        (b) => {
          busy = false;
          if (this.destroyed) return;
          if (b === undefined) {
            ended = true;
            this.push(null);
          } else if (b.length > 0) this.push(b);
          else this.read(0);
        },
        (e: unknown) => {
          busy = false;
          this.destroy(e as Error);
        },
      );
    },
    // Destroyed (a reader stopped early): the reads in flight finish into nothing, the handle stays open.
    destroy(err, done) {
      inFlight.length = 0;
      done(err);
    },
  });
}

/**
 * A Writable into an open remote file from offset 0, with WINDOW writes in flight. `finish`
 * means every byte was acknowledged by the server, synced (fsync@openssh.com) and the handle
 * closed; a failure closes the handle too. A write refused while the server's disk is full is
 * DISK_FULL naming the destination.
 */
export function remoteWriter(
  fs: RemoteFs,
  f: RemoteHandle,
  onFull: () => Promise<Error | undefined>,
): Writable {
  let pos = 0;
  let inFlight = 0;
  let failed: Error | undefined;
  let waiting: (() => void)[] = [];
  let closed = false;
  const settle = () => {
    const w = waiting;
    waiting = [];
    for (const r of w) r();
  };
  const aWriteSettles = () => new Promise<void>((r) => waiting.push(r));
  const send = (chunk: Buffer) => {
    for (let off = 0; off < chunk.length; off += PIECE) {
      const piece = chunk.subarray(off, Math.min(chunk.length, off + PIECE));
      const position = pos;
      pos += piece.length;
      inFlight++;
      fs.write(f, piece, position).then(
        () => {
          inFlight--;
          settle();
        },
        async (e: unknown) => {
          // A write the server refused (not a lost connection) may be a full disk: ask once.
          const refused = failed === undefined && (e as { code?: string }).code === "IO";
          const full = refused ? await onFull().catch(() => undefined) : undefined;
          failed ??= full ?? (e as Error);
          inFlight--;
          settle();
        },
      );
    }
  };
  /** Until fewer than `n` writes are in flight (or one failed). */
  const drainTo = async (n: number) => {
    while (inFlight > n && failed === undefined) await aWriteSettles();
  };
  const closeOnce = async () => {
    if (closed) return;
    closed = true;
    await fs.closeHandle(f);
  };
  return new Writable({
    highWaterMark: PIECE * 4,
    write(chunk: Buffer, _enc, done) {
      if (failed) return done(failed);
      send(chunk);
      drainTo(WINDOW - 1).then(() => done(failed ?? null));
    },
    final(done) {
      (async () => {
        await drainTo(0);
        while (inFlight > 0) await aWriteSettles();
        if (failed) throw failed;
        await fs.fsync(f);
        await closeOnce();
      })().then(
        () => done(),
        (e: unknown) => done(e as Error),
      );
    },
    destroy(err, done) {
      (async () => {
        while (inFlight > 0) await aWriteSettles();
        await closeOnce().catch(() => undefined);
      })().then(
        () => done(err),
        () => done(err),
      );
    },
  });
}

/** DISK_FULL for a write the server refused while it has (almost) no free space. */
export async function diskFullError(
  fs: RemoteFs,
  dir: string,
  name: string,
  where: string,
): Promise<Error | undefined> {
  const s = await fs.space(dir).catch(() => undefined);
  if (s === undefined || s.free > 1024 * 1024) return undefined;
  return new BschedError(
    "DISK_FULL",
    `destination ${name}: no space left on ${where} (${s.free} bytes free)`,
    {
      hint: "free space on the server, or keep fewer backups there (its `keep`)",
    },
  );
}
