import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { after, test } from "node:test";
import type { DestinationSpec } from "../src/config/load.ts";
import { copyBackup } from "../src/copy/copy-backup.ts";
import { BschedError } from "../src/core/errors.ts";
import type { Destination } from "../src/destination/destination.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { openDestination } from "../src/destination/open.ts";
import { PART_SIZE, s3Faults } from "../src/destination/s3/multipart.ts";
import { systemClock } from "../src/platform/clock.ts";
import { isBackupName } from "../src/snapshot/naming.ts";
import { verifyBackups } from "../src/verify/verify.ts";
import { BIN, collect, tempDir } from "./helpers/cli.ts";
import { type DestinationUnderTest, destinationContract } from "./helpers/destination-contract.ts";
import { assertNoSecrets, sampleProcessList } from "./helpers/leaks.ts";
import { makeServer } from "./helpers/server.ts";
import { type Ceph, cephMissing, releaseCeph, sharedCeph } from "./helpers/servers/ceph.ts";

/**
 * The `s3` destination on Ceph's S3 gateway (radosgw) on loopback: the Destination contract, a
 * large file in several multipart parts, and the faults (a bucket that does not exist, a wrong
 * secret key, the gateway killed in the middle of a put).
 */

const skip = cephMissing();
after(releaseCeph);

let bucketP: Promise<string> | undefined;
/** One bucket for this file's contract cases (each case a prefix of its own). */
function fileBucket(c: Ceph): Promise<string> {
  bucketP ??= c.newBucket();
  return bucketP;
}

let n = 0;

function s3Spec(
  c: Ceph,
  state: string,
  over: {
    bucket: string;
    prefix?: string;
    endpoint?: string;
    secretAccessKey?: string;
    accessKeyId?: string;
    verify?: "checksum" | "read" | "size";
  },
): DestinationSpec {
  return {
    name: "offsite",
    state,
    config: {
      type: "s3",
      endpoint: over.endpoint ?? c.endpoint,
      bucket: over.bucket,
      prefix: over.prefix ?? "",
      region: c.region,
      accessKeyId: over.accessKeyId ?? c.accessKeyId,
      secretAccessKey: over.secretAccessKey ?? c.secretAccessKey,
      pathStyle: true,
      verify: over.verify ?? "checksum",
    },
  };
}

/** Everything under `prefix` of `bucket`, deleted (a case's cleanup). */
async function emptyPrefix(c: Ceph, bucket: string, prefix: string): Promise<void> {
  const sdk = await import("@aws-sdk/client-s3");
  const client = new sdk.S3Client({
    endpoint: c.endpoint,
    region: c.region,
    forcePathStyle: true,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
  });
  try {
    for (;;) {
      const r = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      const keys = (r.Contents ?? []).map((o) => ({ Key: o.Key as string }));
      if (keys.length === 0) break;
      await client.send(new sdk.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    }
  } finally {
    client.destroy();
  }
}

async function s3Under(
  prefix?: string,
): Promise<DestinationUnderTest & { spec: DestinationSpec; ceph: Ceph }> {
  const ceph = await sharedCeph();
  const bucket = await fileBucket(ceph);
  const state = await tempDir("bsched-s3-state-");
  const p = prefix ?? `case${n++}/site`;
  const spec = s3Spec(ceph, state, { bucket, prefix: p });
  const dest = openDestination(spec);
  return {
    dest,
    spec,
    ceph,
    cleanup: async () => {
      await emptyPrefix(ceph, bucket, `${p}/`);
      await fs.rm(state, { recursive: true, force: true });
    },
    // A remove cut after its first step: the manifest object deleted, the rest still there.
    async crashDuringRemove(backup) {
      const sdk = await import("@aws-sdk/client-s3");
      const client = new sdk.S3Client({
        endpoint: ceph.endpoint,
        region: ceph.region,
        forcePathStyle: true,
        credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
      });
      await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: `${p}/${backup}/manifest.json` }));
      client.destroy();
    },
  };
}

if (skip) {
  test("destination s3 (Ceph radosgw)", { skip }, () => undefined);
} else {
  destinationContract("s3 on radosgw", () => s3Under());
}

const D1 = "D_2026_12_06_04_00_00";

/** Bytes whose every position shows: a misplaced range or part is seen. */
function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(i, i);
  return b;
}

/** A readable of `size` pattern bytes made piece by piece (never the whole in memory at once). */
function patternStream(size: number, piece = 1 << 20): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at >= size) {
        this.push(null);
        return;
      }
      const len = Math.min(piece, size - at);
      const b = Buffer.alloc(len);
      for (let i = 0; i < len; i += 4) b.writeUInt32LE((at + i) >>> 0, i);
      at += len;
      this.push(b);
    },
  });
}

async function readAll(
  dest: Destination,
  backup: string,
  file: string,
  opts?: { start?: number; end?: number },
) {
  const h = await dest.open(backup, file);
  try {
    const parts: Buffer[] = [];
    for await (const c of h.stream(opts)) parts.push(c as Buffer);
    return Buffer.concat(parts);
  } finally {
    await h.close();
  }
}

function codeOf(e: unknown): string | undefined {
  return (e as { code?: string }).code;
}

test("s3: a 40 MB file goes up in several multipart parts and reads back whole and by ranges", {
  skip,
  timeout: 300_000,
}, async (t) => {
  const u = await s3Under();
  t.after(async () => {
    await u.dest.close?.();
    await u.cleanup();
  });
  await u.dest.ready();
  const size = 40 * 1024 * 1024 + 12; // not a whole number of parts
  const st = await u.dest.stage(D1);
  await st.put("files/db/big.bin", patternStream(size), size);
  await st.publish('{"header":{}}\n');
  const whole = pattern(size);
  const h = await u.dest.open(D1, "files/db/big.bin");
  try {
    assert.equal(h.size, size);
    const digest = createHash("sha256");
    for await (const c of h.stream({ highWaterMark: 1 << 20 })) digest.update(c as Buffer);
    assert.equal(digest.digest("hex"), createHash("sha256").update(whole).digest("hex"), "whole");
    const at = 8 * 1024 * 1024 - 5; // across the first part boundary
    const buf = Buffer.alloc(100);
    let got = 0;
    while (got < 100) got += await h.read(buf, got, 100 - got, at + got);
    assert.ok(buf.equals(whole.subarray(at, at + 100)), "read across a part boundary");
  } finally {
    await h.close();
  }
  const tail = await readAll(u.dest, D1, "files/db/big.bin", { start: size - 1000 });
  assert.ok(tail.equals(whole.subarray(size - 1000)), "the tail by a range");
  const mid = await readAll(u.dest, D1, "files/db/big.bin", { start: 16 << 20, end: (24 << 20) + 7 });
  assert.ok(mid.equals(whole.subarray(16 << 20, (24 << 20) + 8)), "a range spanning a part");
  // The layout any S3 client browses: the same names as a folder.
  const top = await u.dest.names();
  assert.deepEqual(top, [D1]);
  assert.equal(
    u.dest.locationOf(D1, "files/db/big.bin"),
    `s3://${(u.spec.config as { bucket: string }).bucket}/${(u.spec.config as { prefix: string }).prefix}/${D1}/files/db/big.bin`,
  );
});

test("s3: a multipart body shorter than said fails, and leaves no object and no multipart upload", {
  skip,
  timeout: 300_000,
}, async (t) => {
  const u = await s3Under();
  t.after(async () => {
    await u.dest.close?.();
    await u.cleanup();
  });
  await u.dest.ready();
  const st = await u.dest.stage(D1);
  const said = 20 * 1024 * 1024;
  await assert.rejects(
    st.put("files/big.bin", patternStream(12 * 1024 * 1024), said),
    /ended after 12582912 of 20971520/,
  );
  await st.abort();
  assert.deepEqual(await u.dest.names(), [], "nothing left");
  const sdk = await import("@aws-sdk/client-s3");
  const client = new sdk.S3Client({
    endpoint: u.ceph.endpoint,
    region: u.ceph.region,
    forcePathStyle: true,
    credentials: { accessKeyId: u.ceph.accessKeyId, secretAccessKey: u.ceph.secretAccessKey },
  });
  t.after(() => client.destroy());
  const config = u.spec.config as { bucket: string; prefix: string };
  const ups = await client.send(
    new sdk.ListMultipartUploadsCommand({ Bucket: config.bucket, Prefix: `${config.prefix}/` }),
  );
  assert.deepEqual(ups.Uploads ?? [], [], "the multipart upload was aborted");
});

/** The multipart uploads still open under a case's prefix (none once a put failed and was aborted). */
async function openUploads(u: { ceph: Ceph; spec: DestinationSpec }): Promise<unknown[]> {
  const sdk = await import("@aws-sdk/client-s3");
  const client = new sdk.S3Client({
    endpoint: u.ceph.endpoint,
    region: u.ceph.region,
    forcePathStyle: true,
    credentials: { accessKeyId: u.ceph.accessKeyId, secretAccessKey: u.ceph.secretAccessKey },
  });
  try {
    const config = u.spec.config as { bucket: string; prefix: string };
    const r = await client.send(
      new sdk.ListMultipartUploadsCommand({ Bucket: config.bucket, Prefix: `${config.prefix}/` }),
    );
    return r.Uploads ?? [];
  } finally {
    client.destroy();
  }
}

/** A put then the publish: what a copy does; the error either gave (a put may end before its bytes are up). */
async function putAndPublish(dest: Destination, file: string, size: number): Promise<unknown> {
  const st = await dest.stage(D1);
  const err = await st
    .put(file, patternStream(size), size)
    .then(() => st.publish('{"header":{}}\n'))
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  if (err !== undefined) await st.abort();
  return err;
}

test("s3: radosgw refuses bytes damaged on the way (each part and object goes with its Content-MD5): COPY_FAILED, nothing left", {
  skip,
  timeout: 300_000,
}, async (t) => {
  const u = await s3Under();
  t.after(async () => {
    s3Faults.body = undefined;
    await u.dest.close?.();
    await u.cleanup();
  });
  await u.dest.ready();
  // One byte flipped after its MD5 was taken, as a faulty link would: part 2 of a multipart
  // upload, then a whole small object (part 0).
  for (const [size, part] of [
    [20 * 1024 * 1024 + 4, 2],
    [70_000, 0],
  ] as const) {
    s3Faults.body = (_key, n, bytes) => {
      if (n !== part) return bytes;
      const bad = Buffer.from(bytes);
      bad[1000] = (bad[1000] as number) ^ 0xff;
      return bad;
    };
    const err = await putAndPublish(u.dest, "files/db/big.bin", size);
    assert.ok(err instanceof BschedError, `refused: ${String(err)}`);
    assert.equal(err.code, "COPY_FAILED", err.message);
    assert.match(err.message, /destination offsite/);
    assert.match(err.message, /BadDigest/, "the server's own refusal");
    assert.match(err.hint ?? "", /run it again/);
    assert.deepEqual(await u.dest.names(), [], "nothing listed, nothing left");
    assert.deepEqual(await openUploads(u), [], "no multipart upload left open");
  }
  // Without the fault the same puts go through and read back exactly.
  s3Faults.body = undefined;
  assert.equal(await putAndPublish(u.dest, "files/db/big.bin", 20 * 1024 * 1024 + 4), undefined);
  const back = await readAll(u.dest, D1, "files/db/big.bin");
  assert.ok(back.equals(pattern(20 * 1024 * 1024 + 4)));
});

test("s3: an ETag that is not what the bytes sent make fails the copy (COPY_FAILED); with verify: checksum the staging is checkedOnPut", {
  skip,
  timeout: 300_000,
}, async (t) => {
  const u = await s3Under();
  t.after(async () => {
    s3Faults.etag = undefined;
    await u.dest.close?.();
    await u.cleanup();
  });
  await u.dest.ready();
  const st = await u.dest.stage(D1);
  assert.equal(st.checkedOnPut, true, "verify: checksum: the server vouches for each put");
  await st.abort();
  const state = await tempDir("bsched-s3-state-");
  const config = u.spec.config as { bucket: string; prefix: string };
  const plain = openDestination(
    s3Spec(u.ceph, state, { bucket: config.bucket, prefix: config.prefix, verify: "read" }),
  );
  const st2 = await plain.stage(D1);
  assert.notEqual(st2.checkedOnPut, true, "verify: read: read back, ETags not relied on");
  await st2.abort();
  await plain.close?.();
  // A multipart object (its ETag: the MD5 of the parts' MD5s, "-N"), then a single PUT's (its MD5).
  for (const size of [4 * PART_SIZE, 5000]) {
    let seen = "";
    s3Faults.etag = (key, etag) => {
      if (!key.endsWith("big.bin")) return etag;
      seen = etag;
      return `"${"0".repeat(32)}${size > PART_SIZE ? "-4" : ""}"`;
    };
    const err = await putAndPublish(u.dest, "files/big.bin", size);
    assert.ok(err instanceof BschedError, `failed: ${String(err)}`);
    assert.equal(err.code, "COPY_FAILED", err.message);
    assert.match(err.message, /destination offsite/);
    assert.match(err.message, /ETag/);
    assert.match(err.message, /not what was sent/);
    // The real ETag was what the bytes make: the check compares like with like.
    const want = pattern(size);
    const md5 = (b: Buffer) => createHash("md5").update(b).digest();
    const parts = [0, 1, 2, 3].map((i) => md5(want.subarray(i * PART_SIZE, (i + 1) * PART_SIZE)));
    const expected =
      size > PART_SIZE
        ? `${createHash("md5").update(Buffer.concat(parts)).digest("hex")}-4`
        : md5(want).toString("hex");
    assert.equal(seen.replaceAll('"', ""), expected, "radosgw's own ETag");
    assert.deepEqual(await u.dest.names(), [], "nothing listed, nothing left");
  }
});

test("s3: works with AWS_CA_BUNDLE set in the environment (as CI may have it)", { skip }, async (t) => {
  const before = process.env.AWS_CA_BUNDLE;
  t.after(() => {
    if (before === undefined) delete process.env.AWS_CA_BUNDLE;
    else process.env.AWS_CA_BUNDLE = before;
  });
  for (const bundle of ["/etc/ssl/certs/ca-certificates.crt", "/nonexistent/ca.pem"]) {
    process.env.AWS_CA_BUNDLE = bundle;
    const u = await s3Under();
    try {
      await u.dest.ready();
      const st = await u.dest.stage(D1);
      await st.put("files/x", Readable.from([Buffer.from("x")]), 1);
      await st.publish("{}\n");
      assert.equal((await u.dest.readSmall(D1, "files/x", 10))?.toString(), "x", bundle);
    } finally {
      await u.dest.close?.();
      await u.cleanup();
    }
  }
});

test("s3: a bucket that does not exist is DESTINATION_MISSING naming bucket, endpoint and the fix", {
  skip,
}, async (t) => {
  const ceph = await sharedCeph();
  const state = await tempDir("bsched-s3-state-");
  const dest = openDestination(s3Spec(ceph, state, { bucket: "no-such-bucket-here" }));
  t.after(() => dest.close?.());
  await assert.rejects(dest.ready(), (e: unknown) => {
    assert.ok(e instanceof BschedError);
    assert.equal(e.code, "DESTINATION_MISSING");
    assert.match(e.message, /offsite/);
    assert.match(e.message, /no-such-bucket-here/);
    assert.ok(e.message.includes(ceph.endpoint), e.message);
    assert.match(e.hint ?? "", /create it/);
    return true;
  });
  await assert.rejects(dest.names(), (e: unknown) => codeOf(e) === "DESTINATION_MISSING");
});

test("s3: a wrong secret key or access key is AUTH_FAILED naming the destination, never the secret", {
  skip,
}, async (t) => {
  const ceph = await sharedCeph();
  const bucket = await fileBucket(ceph);
  const state = await tempDir("bsched-s3-state-");
  const wrongSecret = "WRONGsecretKEYthatMUSTnotLEAK0123456789xy";
  for (const over of [
    { secretAccessKey: wrongSecret },
    { accessKeyId: "AKNOSUCHKEY0000", secretAccessKey: wrongSecret },
  ]) {
    const dest = openDestination(s3Spec(ceph, state, { bucket, ...over }));
    t.after(() => dest.close?.());
    for (const call of [() => dest.ready(), () => dest.names(), () => dest.open(D1, "manifest.json")]) {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof BschedError, String(e));
        assert.equal(e.code, "AUTH_FAILED");
        assert.match(e.message, /destination offsite/);
        const said = `${e.message} ${e.hint} ${JSON.stringify(e)} ${e.stack}`;
        assert.ok(!said.includes(wrongSecret), "the secret is never in the error");
        assert.ok(!said.includes(ceph.secretAccessKey));
        assert.match(e.hint ?? "", /secretAccessKey/);
        return true;
      });
    }
  }
});

test("s3: an endpoint that is down is UNREACHABLE naming the endpoint", { skip }, async (t) => {
  const ceph = await sharedCeph();
  const state = await tempDir("bsched-s3-state-");
  const g = await ceph.startGateway();
  await g.stop();
  const dest = openDestination(s3Spec(ceph, state, { bucket: "any-bucket", endpoint: g.endpoint }));
  t.after(() => dest.close?.());
  await assert.rejects(dest.ready(), (e: unknown) => {
    assert.equal(codeOf(e), "UNREACHABLE", String(e));
    assert.ok((e as Error).message.includes(g.endpoint));
    assert.match((e as BschedError).hint ?? "", /running and reachable/);
    return true;
  });
});

test("s3: the lock is a conditional object; an expired one is taken over; a live one refuses", {
  skip,
}, async (t) => {
  const u = await s3Under();
  t.after(async () => {
    await u.dest.close?.();
    await u.cleanup();
  });
  await u.dest.ready();
  const lease = await u.dest.lock("data", "backup of set data", systemClock);
  assert.deepEqual(await u.dest.names(), [".bsched-data.lock"], "the local lock's name, at the top");
  // A clock three minutes ahead: the lease (two minutes) ran out, so another run takes it over.
  const later = { now: () => new Date(Date.now() + 180_000) };
  const taken = await u.dest.lock("data", "prune of set data", later);
  await assert.rejects(u.dest.lock("data", "backup of set data", systemClock), (e: unknown) => {
    assert.equal(codeOf(e), "LOCKED");
    assert.match((e as Error).message, /prune of set data/);
    return true;
  });
  // The first holder's release does not free the lock it lost.
  await lease.release();
  await assert.rejects(u.dest.lock("data", "backup", systemClock), (e: unknown) => codeOf(e) === "LOCKED");
  await taken.release();
  assert.deepEqual(await u.dest.names(), []);
});

test("s3: runs racing for the lock: exactly one wins (the conditional PUT radosgw honours)", {
  skip,
}, async (t) => {
  const u = await s3Under();
  const others = await Promise.all(
    Array.from({ length: 4 }, () => s3Under(u.spec.config.type === "s3" ? u.spec.config.prefix : "")),
  );
  t.after(async () => {
    for (const x of [u, ...others]) await x.dest.close?.();
    await u.cleanup();
  });
  await u.dest.ready();
  // Five destinations (five clients) on the same prefix, as five processes would be.
  const tries = await Promise.allSettled(
    [u, ...others].map((x, i) => x.dest.lock("data", `run ${i}`, systemClock)),
  );
  const won = tries.filter((r) => r.status === "fulfilled");
  assert.equal(won.length, 1, "one holder");
  for (const r of tries) if (r.status === "rejected") assert.equal(codeOf(r.reason), "LOCKED");
  await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
  const again = await others[0]?.dest.lock("data", "after", systemClock);
  await again?.release();
});

test("s3: removeOwnLeftovers removes this process's staging areas and locks, not others'", {
  skip,
}, async (t) => {
  const u = await s3Under();
  t.after(async () => {
    await u.dest.close?.();
    await u.cleanup();
  });
  await u.dest.ready();
  const st = await u.dest.stage(D1);
  await st.put("files/a", Readable.from([Buffer.from("a")]), 1);
  await u.dest.lock("data", "backup of set data", systemClock);
  const names = await u.dest.names();
  assert.ok(
    names.some((x) => x.startsWith(`.${D1}.tmp-${process.pid}-`)),
    names.join(","),
  );
  assert.deepEqual(await u.dest.removeOwnLeftovers?.(process.pid + 1), [], "another pid's: untouched");
  const removed = (await u.dest.removeOwnLeftovers?.(process.pid)) ?? [];
  assert.equal(removed.length, 2, removed.join(", "));
  assert.deepEqual(await u.dest.names(), []);
  const scratch = path.join(u.spec.state, "scratch", "offsite");
  assert.deepEqual(await fs.readdir(scratch).catch(() => []), [], "the local scratch folder too");
});

test("s3: the gateway killed in the middle of a put: a clear error, nothing listed, cleaned and copied after restart", {
  skip,
  timeout: 600_000,
}, async (t) => {
  const ceph = await sharedCeph();
  const bucket = await ceph.newBucket();
  // A gateway of this test's own on the shared cluster: killing it disturbs no other test.
  const g = await ceph.startGateway();
  const server = await makeServer();
  const spec = s3Spec(ceph, path.join(server.dir, "state"), {
    bucket,
    endpoint: g.endpoint,
    prefix: "site1",
  });
  const dest = openDestination(spec);
  t.after(async () => {
    await dest.close?.();
    await g.stop();
  });
  // A published local backup to copy: one big file and a small one.
  const size = 48 * 1024 * 1024;
  await fs.writeFile(path.join(server.data, "big.bin"), pattern(size));
  await fs.writeFile(path.join(server.data, "small.txt"), "small\n");
  const { name } = await server.backup();
  const local = new LocalDestination(server.backups);
  await dest.ready();
  // The copy streams the big file; the gateway dies once a few parts went up.
  const staging = await dest.stage(name);
  let sent = 0;
  let killed: Promise<void> | undefined;
  const h = await local.open(name, "files/big.bin");
  const body = h.stream();
  body.on("data", (c: Buffer) => {
    sent += c.length;
    if (sent > 20 * 1024 * 1024 && !killed) killed = g.kill();
  });
  // The put fails, or (its last parts still going up when it returned) the publish after it.
  const err = await staging
    .put("files/big.bin", body, size)
    .then(() => staging.publish('{"header":{}}\n'))
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  await h.close();
  await killed;
  assert.ok(err instanceof BschedError, `the put failed clearly: ${String(err)}`);
  assert.equal(err.code, "UNREACHABLE", err.message);
  assert.ok(err.message.includes("offsite") && err.message.includes(g.endpoint), err.message);
  await staging.abort(); // never fails, even with the gateway down
  await g.restart();
  const names = await dest.names();
  assert.deepEqual(
    names.filter((x) => isBackupName(x)),
    [],
    "nothing lists as a backup",
  );
  assert.ok(
    names.some((x) => x.includes(name)),
    `the leftover is there until cleaned: ${names.join(",")}`,
  );
  assert.equal((await dest.removeLeftovers("D")).length, 1);
  assert.deepEqual(await dest.names(), [], "cleaned whole");
  const r = await copyBackup(local, dest, name);
  assert.equal(r.files, 2);
  assert.deepEqual(await dest.names(), [name]);
  const report = await verifyBackups(dest, [name], () => {});
  assert.deepEqual(report.problems, []);
  const back = await readAll(dest, name, "files/big.bin");
  assert.ok(back.equals(pattern(size)), "the copy reads back exactly");
});

test("s3: a set whose folder is an s3 destination: backup, list, verify and restore through the CLI", {
  skip,
  timeout: 300_000,
}, async () => {
  const ceph = await sharedCeph();
  const bucket = await ceph.newBucket();
  const server = await makeServer({ setKeys: ["folder: offsite"] });
  await fs.appendFile(
    server.config,
    `destinations:
  offsite:
    type: s3
    endpoint: ${ceph.endpoint}
    bucket: ${bucket}
    prefix: site1
    accessKeyId: ${ceph.accessKeyId}
    secretAccessKey: secret:s3key
`,
  );
  // The secret key in the state folder's store (bsched secret set --stdin), never in the config.
  const child = spawn(
    process.execPath,
    [BIN, "secret", "set", "s3key", "--stdin", "--config", server.config],
    {
      env: {
        ...process.env,
        BSCHED_CONFIG: undefined,
        BSCHED_SECRET_KEY_FILE: undefined,
        CREDENTIALS_DIRECTORY: undefined,
      },
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  child.stdin.end(`${ceph.secretAccessKey}\n`);
  const set = await collect(child as never);
  assert.equal(set.code, 0, set.stderr);
  const ps = sampleProcessList(200);
  await fs.mkdir(path.join(server.data, "sub"));
  await fs.writeFile(path.join(server.data, "a.db"), pattern(3_000_000));
  await fs.writeFile(path.join(server.data, "sub", "b.txt"), "b\n");
  await fs.writeFile(path.join(server.data, "empty.txt"), "");
  const full = await server.backup();
  await fs.writeFile(path.join(server.data, "sub", "b.txt"), "b changed\n");
  const inc = await server.backup();
  assert.equal(inc.mode, "incremental");
  assert.equal(inc.parent, full.name);
  const list = await server.cli(["list", "data", "--json"]);
  assert.equal(list.code, 0, list.stderr);
  assert.ok(list.stdout.includes(full.name) && list.stdout.includes(inc.name), list.stdout);
  const verify = await server.cli(["verify", "data"]);
  assert.equal(verify.code, 0, verify.stderr);
  const to = path.join(server.dir, "restored");
  const restore = await server.cli(["restore", "data", "--to", to]);
  assert.equal(restore.code, 0, restore.stderr);
  assert.ok((await fs.readFile(path.join(to, "a.db"))).equals(pattern(3_000_000)));
  assert.equal(await fs.readFile(path.join(to, "sub", "b.txt"), "utf8"), "b changed\n");
  assert.equal((await fs.stat(path.join(to, "empty.txt"))).size, 0, "an empty file too");
  // Nothing of the backup on the local disk: it is in the bucket, browsable by its names.
  const backups = await fs.readdir(server.backups).catch(() => [] as string[]);
  assert.deepEqual(
    backups.filter((x) => isBackupName(x)),
    [],
  );
  assertNoSecrets(
    { "the S3 secret key": ceph.secretAccessKey },
    {
      "list output": list.stdout + list.stderr,
      "verify output": verify.stdout + verify.stderr,
      "restore output": restore.stdout + restore.stderr,
      "the process list during the runs": await ps.stop(),
      "the config": await fs.readFile(server.config, "utf8"),
    },
  );
});
