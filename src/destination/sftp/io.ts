import { Readable, Writable } from "node:stream";
import { BschedError } from "../../core/errors.ts";
import { youngCollector } from "../../platform/memory.ts";
import type { RemoteFs, RemoteHandle } from "./remote.ts";

/**
 * SSH packets per SFTP request. The channel carries at most one packet's payload at a time
 * (OpenSSH: 32 KiB), and each packet costs the same whatever its size (ssh2 without its native
 * binding makes a cipher per packet); a request's header pushes a 64 KiB piece into a third,
 * tiny packet. A piece that fills exactly PACKETS packets, with PACKETS of them per request,
 * halves the requests, the replies to decrypt and the promises compared with 64 KiB pieces.
 */
const PACKETS = 4;
/** Bytes in flight per stream: the server's channel window (OpenSSH: 2 MiB); more would wait in ssh2's buffer. */
const IN_FLIGHT = 2 << 20;
/** What ssh2 calls the channel's largest packets (payload bytes), each way. */
const DEFAULT_PACKET = 32 * 1024;
/** An SFTP WRITE's bytes besides the data (length, type, id, handle's length, offset, data's length) and the handle. */
const WRITE_HEADER = 4 + 1 + 4 + 4 + 8 + 4;
/** A DATA reply's bytes besides the data (length, type, id, data's length). */
const DATA_HEADER = 4 + 1 + 4 + 4;

function packetSize(f: RemoteHandle, way: "outgoing" | "incoming"): number {
  const n = (f.sftp as unknown as Record<string, { packetSize?: number } | undefined>)[way]?.packetSize;
  return typeof n === "number" && n >= 4096 ? n : DEFAULT_PACKET;
}

/** The data of one WRITE that fills PACKETS packets of the channel exactly. */
export function writePiece(f: RemoteHandle): number {
  return PACKETS * packetSize(f, "outgoing") - WRITE_HEADER - f.h.length;
}

/** The data of one READ whose reply fills PACKETS packets exactly. */
export function readPiece(f: RemoteHandle): number {
  return PACKETS * packetSize(f, "incoming") - DATA_HEADER;
}

const windowOf = (piece: number) => Math.max(2, Math.ceil(IN_FLIGHT / piece));

/**
 * ssh2 copies each byte into a request, then into packets, then encrypts it into new Buffers:
 * several fresh Buffers per 32 KiB, freed only when V8 collects their wrappers. A young
 * collection this often keeps that garbage to a few megabytes (platform/memory.ts).
 */
const COLLECT_EVERY = 4 << 20;

/**
 * The bytes of an open remote file from `start` to `end` inclusive, with IN_FLIGHT bytes of reads
 * in flight (bounded memory). A short read (which a server may give) is completed before
 * the next piece is passed on, so the bytes come out in order and whole; closing the stream
 * leaves the handle open.
 */
export function remoteRange(
  fs: RemoteFs,
  f: RemoteHandle,
  size: number,
  opts: { start?: number; end?: number; highWaterMark?: number },
): Readable {
  const PIECE = readPiece(f);
  const WINDOW = windowOf(PIECE);
  const collect = youngCollector(COLLECT_EVERY);
  const start = opts.start ?? 0;
  const stop = Math.min(size, opts.end === undefined ? size : opts.end + 1);
  let next = start;
  let busy = false;
  let ended = false;
  const inFlight: { pos: number; len: number; buf: Buffer; n: Promise<number> }[] = [];
  const issue = () => {
    if (inFlight.length >= WINDOW || next >= stop) return;
    // The requests leave together, in one write call (SftpSession.cork).
    const uncork = fs.session.cork();
    try {
      issueAll();
    } finally {
      uncork();
    }
  };
  const issueAll = () => {
    while (inFlight.length < WINDOW && next < stop) {
      const len = Math.min(PIECE, stop - next);
      const buf = Buffer.allocUnsafe(len);
      collect(len);
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
    highWaterMark: opts.highWaterMark ?? 64 * 1024,
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
 * A Writable into an open remote file from offset 0, with IN_FLIGHT bytes of writes in flight. `finish`
 * means every byte was acknowledged by the server, synced (fsync@openssh.com) and the handle
 * closed; a failure closes the handle too. With `deferSync`, `finish` comes once every byte is
 * sent, and the rest (the last writes' acknowledgements, the sync, the close: a few round trips)
 * is handed to it as a promise to await before anything relies on the file (a staging area's
 * publish): the next file's requests follow this one's on the connection, which never drains
 * between files. A write refused while the server's disk is full is DISK_FULL naming the
 * destination.
 */
export function remoteWriter(
  fs: RemoteFs,
  f: RemoteHandle,
  onFull: () => Promise<Error | undefined>,
  deferSync?: (syncing: Promise<void>) => void,
): Writable {
  const PIECE = writePiece(f);
  const WINDOW = windowOf(PIECE);
  const collect = youngCollector(COLLECT_EVERY);
  let pos = 0;
  let inFlight = 0;
  let failed: Error | undefined;
  let waiting: (() => void)[] = [];
  let closed = false;
  /** The deferred sync and close, once finished (see deferSync). */
  let syncing: Promise<void> | undefined;
  const settle = () => {
    const w = waiting;
    waiting = [];
    for (const r of w) r();
  };
  const aWriteSettles = () => new Promise<void>((r) => waiting.push(r));
  /** The bytes short of a whole piece, held for the next chunk (or the end): every request fills its packets. */
  let carry: Buffer | undefined;
  /** Send the whole pieces of `chunk` (all of it at the end), in one write call (SftpSession.cork). */
  const send = (chunk: Buffer, end: boolean) => {
    const uncork = fs.session.cork();
    try {
      let rest = chunk;
      if (carry !== undefined) {
        const fill = rest.subarray(0, PIECE - carry.length);
        carry = Buffer.concat([carry, fill]);
        rest = rest.subarray(fill.length);
        if (carry.length === PIECE || end) {
          sendPiece(carry);
          carry = undefined;
        }
      }
      while (rest.length >= PIECE || (end && rest.length > 0)) {
        sendPiece(rest.subarray(0, PIECE));
        rest = rest.subarray(PIECE);
      }
      if (rest.length > 0) carry = Buffer.from(rest);
    } finally {
      uncork();
    }
  };
  const sendPiece = (piece: Buffer) => {
    collect(piece.length);
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
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _enc, done) {
      if (failed) return done(failed);
      send(chunk, false);
      drainTo(WINDOW - 1).then(() => done(failed ?? null));
    },
    final(done) {
      if (carry !== undefined && failed === undefined) send(Buffer.alloc(0), true);
      /** Every write acknowledged, then the file synced and closed (closed on a failure too). */
      const settleAll = async () => {
        try {
          await drainTo(0);
          while (inFlight > 0) await aWriteSettles();
          if (failed) throw failed;
          await fs.fsync(f);
        } catch (e) {
          await closeOnce().catch(() => undefined);
          throw e;
        }
        await closeOnce();
      };
      if (deferSync !== undefined) {
        syncing = settleAll();
        deferSync(syncing);
        done();
        return;
      }
      settleAll().then(
        () => done(),
        (e: unknown) => done(e as Error),
      );
    },
    destroy(err, done) {
      // Finished with deferSync: the deferred promise owns the writes in flight and the handle.
      if (syncing !== undefined) return done(err);
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
