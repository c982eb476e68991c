import os from "node:os";
import { pipeline, Readable, Transform } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { getSystemErrorMessage } from "node:util";
import type { Clock } from "../platform/clock.ts";
import type { Destination, Lease, ReadHandle, Staging } from "./destination.ts";

/**
 * The fault-injecting Destination: the test seam of every destination (like Kopia's
 * fault-injecting storage). It wraps a real one and, as its plan says, fails the Nth call of an
 * operation, runs out of space, returns short or cut reads, adds latency, breaks streams after N
 * bytes, or stops at publish — so the crash and fault tests drive the real pipelines through the
 * same interface production uses, with no hook in production code. Production never builds one.
 *
 * The plan is read at each call, not copied: a test may switch a fault off between two runs.
 */

/**
 * The operations a plan counts and can fail. `read` is a ReadHandle's read, `stream` its stream();
 * `publish` and `abort` a Staging's (abort is only counted: it never fails, by the contract).
 */
export const FAULT_OPS = [
  "ready",
  "names",
  "topFiles",
  "open",
  "read",
  "stream",
  "readSmall",
  "stage",
  "put",
  "publish",
  "abort",
  "remove",
  "removeLeftovers",
  "lock",
  "space",
] as const;
export type FaultOp = (typeof FAULT_OPS)[number];

export interface FailCall {
  op: FaultOp;
  /** The call that fails, counted from 1 among the calls of `op` this fault matches (see `on`). */
  nth: number;
  /** That call and every later one fail (a disk gone for good), not only the Nth. */
  andAfter?: boolean;
  /** The errno code of the error, as the OS gives it (default EIO). */
  code?: string;
  /**
   * Only calls on what this matches count (and fail): `<backup>/<file>` for a file (`files/a.db`,
   * `manifest.json`), `<backup>` for a backup, "" for the destination itself.
   */
  on?: RegExp;
}

export interface FaultPlan {
  /** Fail the Nth call of an operation with an OS-like error (`code`, `errno`, `syscall`, `path`). */
  fail?: FailCall[];
  /** publish fails with ENOSPC before anything is published (the disk filled while the manifest was written). */
  enospcAtPublish?: boolean;
  /**
   * Once this many bytes were read through the wrapper (handle reads and streams together), every
   * further read fails with `code` (default ENOSPC: a remote's scratch space running out).
   */
  failAfterBytesRead?: { bytes: number; code?: string };
  /** A handle's read returns at most this many bytes per call (legal: a correct reader loops). */
  shortReads?: number;
  /** Reads and streams end at this offset (a read returns 0, a stream ends): a stored file cut short under the reader. */
  truncateReadsAt?: number;
  /** Each stream errors (EIO, a connection reset) once it has delivered this many bytes. */
  crashStreamsAfterBytes?: number;
  /**
   * The read faults above (byte budget, short and cut reads, stream crash) hit only the files
   * whose `<backup>/<file>` this matches (e.g. /files\/big\.db$/); default every file.
   */
  readsOf?: RegExp;
  /** Milliseconds added before every call (a slow disk or link). */
  latencyMs?: number;
  /**
   * Called before a backup is published, with its name and staging folder: a test stops a run
   * there (throwing fails the publish; blocking pauses the run at "everything written, nothing
   * visible").
   */
  beforePublish?: (backup: string, staging: Staging) => void | Promise<void>;
}

/** An error shaped as Node's own for a failed system call, so fromOsError words it like the real one. */
export function osError(code: string, syscall: string, where: string): NodeJS.ErrnoException {
  const errno = (os.constants.errno as Record<string, number>)[code];
  const text = errno === undefined ? code : getSystemErrorMessage(-errno);
  return Object.assign(new Error(`${code}: ${text}, ${syscall} '${where}'`), {
    code,
    errno: errno === undefined ? -1 : -errno,
    syscall,
    path: where,
  });
}

/** What FailCall.on and FaultPlan.readsOf match: `<backup>/<file>`, `<backup>`, or "". */
function keyOf(backup?: string, file?: string): string {
  if (backup === undefined) return "";
  return file === undefined ? backup : `${backup}/${file}`;
}

/** `inner` with the faults of `plan` injected. */
export function faulty(inner: Destination, plan: FaultPlan = {}): FaultyDestination {
  return new FaultyDestination(inner, plan);
}

export class FaultyDestination implements Destination {
  readonly inner: Destination;
  readonly plan: FaultPlan;
  /** How many times each operation was called (a test asserts a fault was reached). */
  readonly calls = new Map<FaultOp, number>();
  /** Bytes read through the wrapper so far (reads and streams). */
  bytesRead = 0;

  // The optional capabilities are there when the inner destination has them (a caller that finds
  // none does without); they pass through unfaulted, a lone file wrapped with the same plan.
  readonly loneFile?: (backup: string) => Promise<Destination | undefined>;
  readonly device?: () => Promise<number | undefined>;
  readonly removeOwnLeftovers?: (pid: number) => Promise<string[]>;
  readonly createdNs?: (backup: string) => Promise<bigint | undefined>;

  constructor(inner: Destination, plan: FaultPlan) {
    this.inner = inner;
    this.plan = plan;
    const { loneFile, device, removeOwnLeftovers, createdNs } = inner;
    if (loneFile) {
      this.loneFile = async (backup) => {
        const lone = await loneFile.call(inner, backup);
        return lone === undefined ? undefined : faulty(lone, plan);
      };
    }
    if (device) this.device = () => device.call(inner);
    if (removeOwnLeftovers) this.removeOwnLeftovers = (pid) => removeOwnLeftovers.call(inner, pid);
    if (createdNs) this.createdNs = (backup) => createdNs.call(inner, backup);
  }

  get name(): string {
    return this.inner.name;
  }

  get where(): string {
    return this.inner.where;
  }

  locationOf(backup: string, file?: string): string {
    return this.inner.locationOf(backup, file);
  }

  /** Count a call of `op` on `backup`/`file`, wait the latency, and throw if the plan fails this call. */
  async #enter(op: FaultOp, backup?: string, file?: string): Promise<void> {
    this.#count(op, backup, file);
    if (this.plan.latencyMs) await sleep(this.plan.latencyMs);
  }

  /** The synchronous half of #enter (stream() must return a stream at once). */
  #count(op: FaultOp, backup?: string, file?: string): void {
    const n = (this.calls.get(op) ?? 0) + 1;
    this.calls.set(op, n);
    const key = keyOf(backup, file);
    for (const f of this.plan.fail ?? []) {
      if (f.op !== op || (f.on !== undefined && !f.on.test(key))) continue;
      // Counted per fault: with `on`, the Nth call on what it matches.
      const seen = (this.#seen.get(f) ?? 0) + 1;
      this.#seen.set(f, seen);
      if (seen === f.nth || (f.andAfter === true && seen > f.nth)) {
        throw osError(f.code ?? "EIO", op, this.#at(backup, file));
      }
    }
  }

  /** Calls each planned failure has counted so far. */
  readonly #seen = new Map<FailCall, number>();

  #at(backup?: string, file?: string): string {
    if (backup === undefined) return this.where;
    return this.inner.locationOf(backup, file);
  }

  /** Whether the plan's read faults hit this file (readsOf). */
  #hit(backup: string, file: string): boolean {
    return this.plan.readsOf === undefined || this.plan.readsOf.test(keyOf(backup, file));
  }

  /** Account `n` bytes read; throws once the plan's byte budget is spent. */
  #consume(n: number, where: string, hit: boolean): void {
    if (!hit) return;
    const limit = this.plan.failAfterBytesRead;
    if (limit !== undefined && this.bytesRead + n > limit.bytes) {
      this.bytesRead = limit.bytes;
      throw osError(limit.code ?? "ENOSPC", "read", where);
    }
    this.bytesRead += n;
  }

  async ready(): Promise<void> {
    await this.#enter("ready");
    return this.inner.ready();
  }

  async names(): Promise<string[]> {
    await this.#enter("names");
    return this.inner.names();
  }

  async topFiles(backup: string): Promise<{ name: string; size: number }[]> {
    await this.#enter("topFiles", backup);
    return this.inner.topFiles(backup);
  }

  async readSmall(backup: string, file: string, max: number): Promise<Buffer | undefined> {
    await this.#enter("readSmall", backup, file);
    const data = await this.inner.readSmall(backup, file, max);
    if (data !== undefined) this.#consume(data.length, this.#at(backup, file), this.#hit(backup, file));
    return data;
  }

  async open(backup: string, file: string): Promise<ReadHandle> {
    const where = this.#at(backup, file);
    const hit = this.#hit(backup, file);
    await this.#enter("open", backup, file);
    const h = await this.inner.open(backup, file);
    return {
      size: h.size,
      read: async (buffer, offset, length, position) => {
        await this.#enter("read", backup, file);
        const cut = hit ? this.plan.truncateReadsAt : undefined;
        if (cut !== undefined) length = Math.max(0, Math.min(length, cut - position));
        const short = hit ? this.plan.shortReads : undefined;
        if (short !== undefined) length = Math.min(length, Math.max(1, short));
        if (length === 0) return 0;
        const n = await h.read(buffer, offset, length, position);
        this.#consume(n, where, hit);
        return n;
      },
      stream: (opts) => {
        try {
          this.#count("stream", backup, file);
        } catch (e) {
          // A stream that cannot be opened errors on its first read, as a real one does.
          return new Readable({
            read() {
              this.destroy(e as Error);
            },
          });
        }
        // pipeline: an error of the inner stream reaches the reader, and a reader that stops
        // early stops the inner stream.
        const out = this.#streamFaults(where, hit, opts?.start ?? 0);
        pipeline(h.stream(opts), out, () => undefined);
        return out;
      },
      close: () => h.close(),
    };
  }

  /** What a stream passes through: latency, the byte budget, a cut, and a crash after N bytes. */
  #streamFaults(where: string, hit: boolean, start: number): Transform {
    let delivered = 0;
    let cutShort = false;
    const plan = this.plan;
    const consume = (n: number) => this.#consume(n, where, hit);
    return new Transform({
      transform(chunk: Buffer, _enc, done) {
        const pass = () => {
          try {
            const cut = hit ? plan.truncateReadsAt : undefined;
            if (cutShort) return done();
            if (cut !== undefined && start + delivered + chunk.length >= cut) {
              // The file ends here for the reader: what follows is dropped, the stream ends cleanly.
              const part = chunk.subarray(0, Math.max(0, cut - start - delivered));
              delivered += part.length;
              consume(part.length);
              cutShort = true;
              if (part.length > 0) this.push(part);
              this.push(null);
              return done();
            }
            const crash = hit ? plan.crashStreamsAfterBytes : undefined;
            if (crash !== undefined && delivered + chunk.length > crash) {
              // Pass up to the crash point, then fail: the reader may see part of the file (what is
              // still buffered when the error lands is lost, as on a reset connection).
              const part = chunk.subarray(0, Math.max(0, crash - delivered));
              delivered += part.length;
              consume(part.length);
              if (part.length > 0) this.push(part);
              throw osError("EIO", "read", where);
            }
            delivered += chunk.length;
            consume(chunk.length);
            done(null, chunk);
          } catch (e) {
            done(e as Error);
          }
        };
        if (plan.latencyMs) setTimeout(pass, plan.latencyMs);
        else pass();
      },
    });
  }

  async stage(backup: string): Promise<Staging> {
    await this.#enter("stage", backup);
    const staging = await this.inner.stage(backup);
    const wrapped: Staging = {
      dir: staging.dir,
      put: async (file, body, size) => {
        await this.#enter("put", backup, file);
        return staging.put(file, body, size);
      },
      publish: async (manifestText) => {
        await this.#enter("publish", backup);
        await this.plan.beforePublish?.(backup, wrapped);
        if (this.plan.enospcAtPublish) throw osError("ENOSPC", "write", `${staging.dir}/manifest.json`);
        return staging.publish(manifestText);
      },
      abort: async () => {
        // abort never fails (the contract): a planned fault here only counts.
        this.calls.set("abort", (this.calls.get("abort") ?? 0) + 1);
        return staging.abort();
      },
    };
    return wrapped;
  }

  async remove(backup: string): Promise<void> {
    await this.#enter("remove", backup);
    return this.inner.remove(backup);
  }

  async removeLeftovers(letter: string): Promise<string[]> {
    await this.#enter("removeLeftovers");
    return this.inner.removeLeftovers(letter);
  }

  async lock(setId: string, purpose: string, clock: Clock): Promise<Lease> {
    await this.#enter("lock");
    return this.inner.lock(setId, purpose, clock);
  }

  async space(): Promise<{ free: number; blockSize: number } | undefined> {
    await this.#enter("space");
    return this.inner.space();
  }
}
