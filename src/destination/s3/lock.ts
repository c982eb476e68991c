import { BschedError } from "../../core/errors.ts";
import type { Clock } from "../../platform/clock.ts";
import {
  isStale,
  LEASE_MS,
  LockedError,
  type LockInfo,
  newLockInfo,
  RENEW_MS,
} from "../../platform/lockfile.ts";
import type { Lease } from "../destination.ts";
import type { S3Conn } from "./client.ts";
import { isNotFound, isPreconditionFailed } from "./errors.ts";

export interface LockRef {
  conn: () => Promise<S3Conn>;
  bucket: string;
  key: string;
  /** `s3://bucket/key`, for messages. */
  where: string;
  fail: (e: unknown, doing: string) => Error;
}

async function readLock(r: LockRef): Promise<{ info: LockInfo; etag: string } | undefined> {
  const { sdk, client } = await r.conn();
  try {
    const got = await client.send(new sdk.GetObjectCommand({ Bucket: r.bucket, Key: r.key }));
    const text = (await got.Body?.transformToString("utf8")) ?? "";
    let info: LockInfo;
    try {
      info = JSON.parse(text) as LockInfo;
    } catch {
      // Not ours, or damaged: held for a lease from when it was written, then taken over.
      const since = got.LastModified ?? new Date(0);
      info = {
        tool: "bsched",
        what: "unknown",
        pid: -1,
        host: "",
        since: since.toISOString(),
        expires: new Date(since.getTime() + LEASE_MS).toISOString(),
        token: "",
      };
    }
    return { info, etag: got.ETag ?? "" };
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Write the lock object: created only if absent, or replaced only if it is still `etag`. Undefined: someone else won. */
async function writeLock(
  r: LockRef,
  info: LockInfo,
  cond: { ifAbsent: true } | { ifMatch: string },
): Promise<string | undefined> {
  const { sdk, client } = await r.conn();
  const put = async (condition: { IfNoneMatch: string } | { IfMatch: string }) => {
    try {
      const done = await client.send(
        new sdk.PutObjectCommand({
          Bucket: r.bucket,
          Key: r.key,
          Body: `${JSON.stringify(info)}\n`,
          ContentType: "application/json",
          ...condition,
        }),
      );
      return done.ETag ?? "";
    } catch (e) {
      if (isPreconditionFailed(e)) return undefined;
      throw e;
    }
  };
  if ("ifAbsent" in cond) return put({ IfNoneMatch: "*" });
  // The ETag as HTTP quotes it; Ceph 16 compares If-Match with the bare digest (measured): a
  // second conditional try with it is just as safe, only one more request there.
  return (
    (await put({ IfMatch: cond.ifMatch })) ??
    (cond.ifMatch.startsWith('"') ? await put({ IfMatch: cond.ifMatch.replaceAll('"', "") }) : undefined)
  );
}

/**
 * The set's run lock as an object holding owner, pid, host and lease expiry (the local lock's
 * LockInfo). Taken with a conditional PUT (If-None-Match: *), so of two runs racing for it one
 * wins; an expired one (or one whose owner died on this host) is taken over with If-Match on the
 * ETag read, so of two runs taking it over one wins; renewed with If-Match too, so a lease lost
 * (renewal failing for a whole lease) is noticed instead of overwriting the new holder's lock.
 * Release reads then deletes: S3 has no conditional DELETE here (docs/design.md "S3").
 */
export async function acquireS3Lock(r: LockRef, what: string, clock: Clock): Promise<Lease> {
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = clock.now();
      const info = newLockInfo(what, now);
      const created = await writeLock(r, info, { ifAbsent: true });
      if (created !== undefined) return startLease(r, info, created, clock);
      const held = await readLock(r);
      if (!held) continue;
      if (!isStale(held.info, now)) throw new LockedError(what, r.where, held.info);
      const taken = await writeLock(r, info, { ifMatch: held.etag });
      if (taken !== undefined) return startLease(r, info, taken, clock);
    }
  } catch (e) {
    throw e instanceof BschedError ? e : r.fail(e, `taking the lock ${r.where}`);
  }
  throw new BschedError("LOCKED", `${what}: could not take the lock ${r.where} (contended)`, {
    hint: "try again",
  });
}

function startLease(r: LockRef, info: LockInfo, firstEtag: string, clock: Clock): Lease {
  let etag = firstEtag;
  let lost = false;
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    if (lost) return;
    const now = clock.now();
    const next = { ...info, expires: new Date(now.getTime() + LEASE_MS).toISOString() };
    renewing = writeLock(r, next, { ifMatch: etag }).then(
      (t) => {
        if (t === undefined) lost = true;
        else etag = t;
      },
      () => undefined, // a failed renewal is retried at the next tick; the lease covers four
    );
  }, RENEW_MS);
  timer.unref();
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await renewing;
      if (lost) return;
      try {
        const held = await readLock(r);
        if (held && held.info.token === info.token) {
          const { sdk, client } = await r.conn();
          await client.send(new sdk.DeleteObjectCommand({ Bucket: r.bucket, Key: r.key }));
        }
      } catch {
        // Unreachable now: the lease runs out by itself and the next run takes the lock over.
      }
    },
  };
}

/** The pid and host a lock object names, for removeOwnLeftovers. */
export async function lockOwner(r: LockRef): Promise<LockInfo | undefined> {
  return (await readLock(r).catch(() => undefined))?.info;
}
