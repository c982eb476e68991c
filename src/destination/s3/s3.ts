import fs from "node:fs/promises";
import path from "node:path";
import { whereOf } from "../../config/destinations.ts";
import type { DestinationSpec } from "../../config/load.ts";
import { BschedError } from "../../core/errors.ts";
import { mapInParallel } from "../../core/parallel.ts";
import type { Clock } from "../../platform/clock.ts";
import { hostName } from "../../platform/host.ts";
import { isRunLockName, parseTempName, runLockName, tempName } from "../../platform/names.ts";
import { MANIFEST_FILE } from "../../snapshot/manifest.ts";
import { isBackupName } from "../../snapshot/naming.ts";
import type { Destination, Lease, ReadHandle, Staging } from "../destination.ts";
import { scratchOf } from "../open.ts";
import { makeClient, type S3Conn } from "./client.ts";
import { isNotFound, missingBucket, notFound, type S3Where, s3Error, statusOf } from "./errors.ts";
import { incompleteName, keyOf, rootOf } from "./keys.ts";
import { acquireS3Lock, type LockRef, lockOwner } from "./lock.ts";
import { objectHandle } from "./read.ts";
import { s3Staging } from "./staging.ts";

type S3Config = Extract<DestinationSpec["config"], { type: "s3" }>;

/** What the top of a backup folder holds: its objects (name, size) and whether a manifest is one. */
interface FolderTop {
  files: { name: string; size: number }[];
  published: boolean;
  /** Staging markers (`.<name>.tmp-PID-HEX`) found there. */
  markers: string[];
}

/** The `s3` destination (docs/design.md "S3"): the factory src/destination/open.ts calls. */
export function openS3(spec: DestinationSpec): Destination {
  if (spec.config.type !== "s3") throw new Error(`destination ${spec.name} is not of type s3`);
  return new S3Destination(spec, spec.config);
}

export class S3Destination implements Destination {
  readonly name: string;
  readonly where: string;
  readonly #spec: DestinationSpec;
  readonly #c: S3Config;
  readonly #root: string;
  readonly #w: S3Where;
  #conn: Promise<S3Conn> | undefined;

  constructor(spec: DestinationSpec, c: S3Config) {
    this.#spec = spec;
    this.#c = c;
    this.name = spec.name;
    this.where = whereOf(c);
    this.#root = rootOf(c.prefix);
    this.#w = { name: spec.name, endpoint: c.endpoint ?? `AWS (${c.region})`, bucket: c.bucket };
  }

  /** The client, made at first use (and again after close). */
  #client = (): Promise<S3Conn> => {
    this.#conn ??= makeClient(this.#spec, this.#c).catch((e: unknown) => {
      this.#conn = undefined;
      throw e;
    });
    return this.#conn;
  };

  #fail = (e: unknown, doing: string): Error => s3Error(e, this.#w, doing);

  /** `s3://bucket/prefix/backup/file`: what `aws s3 ls` shows. */
  locationOf(backup: string, file?: string): string {
    return `s3://${this.#c.bucket}/${this.#root}${backup}${file === undefined ? "" : `/${file}`}`;
  }

  /**
   * The bucket must exist: bsched never creates one (a typo in its name would otherwise send the
   * backups somewhere nobody looks). A listing (not a HEAD) so the answer says why it failed.
   */
  async ready(): Promise<void> {
    const { sdk, client } = await this.#client();
    // A HEAD first: on radosgw a tenth of a listing's time. Its answer has no body: when it
    // fails, the listing says why.
    const there = await client.send(new sdk.HeadBucketCommand({ Bucket: this.#c.bucket })).then(
      () => true,
      () => false,
    );
    if (there) return;
    try {
      await client.send(
        new sdk.ListObjectsV2Command({ Bucket: this.#c.bucket, Prefix: this.#root, MaxKeys: 1 }),
      );
    } catch (e) {
      if (statusOf(e) === 404) throw missingBucket(this.#w);
      throw this.#fail(e, `listing bucket ${this.#c.bucket}`);
    }
  }

  /**
   * Every page of a listing under `prefix`: with "/" as delimiter (default) the objects and the
   * sub-"folders" directly under it; with `deep`, every object at any depth.
   */
  async #list(
    prefix: string,
    deep = false,
  ): Promise<{ objects: { key: string; size: number }[]; folders: string[] }> {
    const { sdk, client } = await this.#client();
    const objects: { key: string; size: number }[] = [];
    const folders: string[] = [];
    let token: string | undefined;
    do {
      const r = await client
        .send(
          new sdk.ListObjectsV2Command({
            Bucket: this.#c.bucket,
            Prefix: prefix,
            ...(deep ? {} : { Delimiter: "/" }),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        )
        .catch((e: unknown) => {
          throw this.#fail(e, `listing ${prefix || "the bucket"}`);
        });
      for (const o of r.Contents ?? []) if (o.Key) objects.push({ key: o.Key, size: o.Size ?? 0 });
      for (const p of r.CommonPrefixes ?? []) if (p.Prefix) folders.push(p.Prefix);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return { objects, folders };
  }

  /** Every object key under `prefix`, at any depth. */
  async #allKeys(prefix: string): Promise<string[]> {
    return (await this.#list(prefix, true)).objects.map((o) => o.key);
  }

  #deleteKeys = async (keys: string[]): Promise<void> => {
    const { sdk, client } = await this.#client();
    if (keys.length === 1) {
      // One key (a marker, a manifest, a lock): a plain DELETE, much cheaper than a batch on radosgw.
      await client
        .send(new sdk.DeleteObjectCommand({ Bucket: this.#c.bucket, Key: keys[0] }))
        .catch((e: unknown) => {
          if (!isNotFound(e)) throw this.#fail(e, `deleting ${keys[0]}`);
        });
      return;
    }
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      if (batch.length === 0) continue;
      const r = await client
        .send(
          new sdk.DeleteObjectsCommand({
            Bucket: this.#c.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        )
        .catch((e: unknown) => {
          throw this.#fail(e, `deleting objects under ${this.#root || "the bucket"}`);
        });
      const failed = (r.Errors ?? []).filter((x) => x.Code !== "NoSuchKey");
      if (failed.length > 0) {
        throw new BschedError(
          "IO",
          `destination ${this.name}: could not delete ${failed.length} object(s), e.g. ${failed[0]?.Key} (${failed[0]?.Code})`,
          { hint: "check the access key may delete in the bucket, then run it again" },
        );
      }
    }
  };

  /** The objects at a backup folder's top. */
  async #top(backup: string): Promise<FolderTop> {
    const prefix = `${keyOf(this.#root, backup)}/`;
    const { objects } = await this.#list(prefix);
    const files: { name: string; size: number }[] = [];
    const markers: string[] = [];
    for (const o of objects) {
      const name = o.key.slice(prefix.length);
      if (parseTempName(name)?.base === backup) markers.push(name);
      else files.push({ name, size: o.size });
    }
    return { files, published: files.some((f) => f.name === MANIFEST_FILE), markers };
  }

  /**
   * What a folder named like a backup lists as: its name when its manifest is there (published);
   * else a run's staging marker (`.<name>.tmp-PID-HEX`), or `.<name>.incomplete` (a remove cut
   * short): never a backup name, so nothing lists it as a backup.
   */
  async #listedName(backup: string): Promise<string> {
    // Most folders are published backups: a HEAD of the manifest (cheap) before a listing.
    if (await this.#hasManifest(backup)) return backup;
    const top = await this.#top(backup);
    if (top.published) return backup;
    return top.markers[0] ?? incompleteName(backup);
  }

  async names(): Promise<string[]> {
    const { objects, folders } = await this.#list(this.#root);
    const out = objects.map((o) => o.key.slice(this.#root.length));
    const tops = folders.map((f) => f.slice(this.#root.length, -1));
    out.push(
      ...(await mapInParallel(tops, 8, (n) => (isBackupName(n) ? this.#listedName(n) : Promise.resolve(n)))),
    );
    return out;
  }

  async topFiles(backup: string): Promise<{ name: string; size: number }[]> {
    return (await this.#top(backup)).files;
  }

  async #head(backup: string, file: string): Promise<number> {
    const key = keyOf(this.#root, backup, file);
    const { sdk, client } = await this.#client();
    try {
      const h = await client.send(new sdk.HeadObjectCommand({ Bucket: this.#c.bucket, Key: key }));
      return h.ContentLength ?? 0;
    } catch (e) {
      if (isNotFound(e)) throw notFound(this.locationOf(backup, file));
      throw this.#fail(e, `reading ${key}`);
    }
  }

  async open(backup: string, file: string): Promise<ReadHandle> {
    const size = await this.#head(backup, file);
    return objectHandle(
      { conn: this.#client, bucket: this.#c.bucket, key: keyOf(this.#root, backup, file), fail: this.#fail },
      size,
    );
  }

  async readSmall(backup: string, file: string, max: number): Promise<Buffer | undefined> {
    const key = keyOf(this.#root, backup, file);
    const { sdk, client } = await this.#client();
    try {
      // One request: the first max+1 bytes tell whether it fits.
      const r = await client.send(
        new sdk.GetObjectCommand({ Bucket: this.#c.bucket, Key: key, Range: `bytes=0-${max}` }),
      );
      const body = Buffer.from((await r.Body?.transformToByteArray()) ?? []);
      return body.length > max ? undefined : body;
    } catch (e) {
      if (isNotFound(e)) throw notFound(this.locationOf(backup, file));
      // An empty object has no byte 0: the range cannot be satisfied.
      if (statusOf(e) === 416) return Buffer.alloc(0);
      throw this.#fail(e, `reading ${key}`);
    }
  }

  /** Whether a backup's manifest object is there (a HEAD: cheaper than a listing on radosgw). */
  async #hasManifest(backup: string): Promise<boolean> {
    return this.#head(backup, MANIFEST_FILE).then(
      () => true,
      (e: unknown) => {
        if ((e as { code?: string }).code === "ENOENT") return false;
        throw e;
      },
    );
  }

  async stage(backup: string): Promise<Staging> {
    const where = this.locationOf(backup);
    if (await this.#hasManifest(backup)) {
      throw new BschedError("IO", `backup ${where} already exists`, { hint: "run the backup again" });
    }
    const marker = tempName(backup);
    const markerKey = keyOf(this.#root, backup, marker);
    const dir = path.join(scratchOf(this.#spec), marker);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const { sdk, client } = await this.#client();
    // The marker names this run (pid) and host: removeOwnLeftovers finds its own runs by it.
    await client
      .send(
        new sdk.PutObjectCommand({
          Bucket: this.#c.bucket,
          Key: markerKey,
          Body: `${JSON.stringify({ pid: process.pid, host: hostName() })}\n`,
        }),
      )
      .catch(async (e: unknown) => {
        await fs.rm(dir, { recursive: true, force: true });
        throw this.#fail(e, `writing ${markerKey}`);
      });
    return s3Staging({
      conn: this.#client,
      bucket: this.#c.bucket,
      root: this.#root,
      backup,
      marker: markerKey,
      dir,
      where,
      fail: this.#fail,
      w: this.#w,
      etags: this.#c.verify === "checksum",
      published: () => this.#hasManifest(backup),
      deleteKeys: this.#deleteKeys,
    });
  }

  /** Manifest first (from then on it is no backup), then everything else under the folder. */
  async remove(backup: string): Promise<void> {
    const manifestKey = keyOf(this.#root, backup, MANIFEST_FILE);
    await this.#head(backup, MANIFEST_FILE);
    await this.#deleteKeys([manifestKey]);
    await this.#deleteFolder(backup);
  }

  /** Every object under a backup folder, and the multipart uploads a cut-off put left there. */
  async #deleteFolder(backup: string): Promise<void> {
    const prefix = `${keyOf(this.#root, backup)}/`;
    await this.#abortUploads(prefix);
    const keys = await this.#allKeys(prefix);
    // The markers last: cut short, the folder still lists as a run's leftover.
    const isMarker = (k: string) => parseTempName(k.slice(prefix.length)) !== undefined;
    await this.#deleteKeys(keys.filter((k) => !isMarker(k)));
    await this.#deleteKeys(keys.filter(isMarker));
  }

  async #abortUploads(prefix: string): Promise<void> {
    const { sdk, client } = await this.#client();
    const r = await client
      .send(new sdk.ListMultipartUploadsCommand({ Bucket: this.#c.bucket, Prefix: prefix }))
      .catch(() => undefined);
    for (const u of r?.Uploads ?? []) {
      if (!u.Key || !u.UploadId) continue;
      await client
        .send(
          new sdk.AbortMultipartUploadCommand({ Bucket: this.#c.bucket, Key: u.Key, UploadId: u.UploadId }),
        )
        .catch(() => undefined);
    }
  }

  async removeLeftovers(letter: string): Promise<string[]> {
    const removed: string[] = [];
    const { folders } = await this.#list(this.#root);
    for (const f of folders) {
      const n = f.slice(this.#root.length, -1);
      if (!isBackupName(n, letter)) continue;
      const listed = await this.#listedName(n);
      if (listed === n) continue;
      await this.#deleteFolder(n);
      removed.push(listed);
    }
    await this.#removeScratch((t) => isBackupName(t.base, letter));
    return removed;
  }

  /** Local scratch folders of runs that died (only the lock holder, or the stopping owner, calls this). */
  async #removeScratch(which: (t: { base: string; pid: number }) => boolean): Promise<void> {
    const scratch = scratchOf(this.#spec);
    for (const n of await fs.readdir(scratch).catch(() => [] as string[])) {
      const t = parseTempName(n);
      if (t && which(t)) await fs.rm(path.join(scratch, n), { recursive: true, force: true });
    }
  }

  #lockRef(setId: string): LockRef {
    const key = `${this.#root}${runLockName(setId)}`;
    return {
      conn: this.#client,
      bucket: this.#c.bucket,
      key,
      where: `s3://${this.#c.bucket}/${key}`,
      fail: this.#fail,
    };
  }

  async lock(setId: string, purpose: string, clock: Clock): Promise<Lease> {
    return acquireS3Lock(this.#lockRef(setId), purpose, clock);
  }

  /**
   * What runs of process `pid` on this host left: staging folders whose marker names it, its
   * run locks, its local scratch folders.
   */
  async removeOwnLeftovers(pid: number): Promise<string[]> {
    const removed: string[] = [];
    const host = hostName();
    const { sdk, client } = await this.#client();
    for (const n of await this.names()) {
      const t = parseTempName(n);
      if (t && isBackupName(t.base) && t.pid === pid) {
        const key = keyOf(this.#root, t.base, n);
        const owner = await client
          .send(new sdk.GetObjectCommand({ Bucket: this.#c.bucket, Key: key }))
          .then(async (r) => JSON.parse((await r.Body?.transformToString()) ?? "{}") as { host?: string })
          .catch(() => undefined);
        if (owner?.host === host) {
          await this.#deleteFolder(t.base);
          removed.push(this.locationOf(t.base));
        }
      }
      if (isRunLockName(n)) {
        const set = n.slice(".bsched-".length, -".lock".length);
        const ref = this.#lockRef(set);
        const info = await lockOwner(ref);
        if (info?.pid === pid && info.host === host) {
          await this.#deleteKeys([ref.key]);
          removed.push(ref.where);
        }
      }
    }
    await this.#removeScratch((t) => t.pid === pid);
    return removed;
  }

  async space(): Promise<undefined> {
    return undefined;
  }

  async close(): Promise<void> {
    const c = this.#conn;
    this.#conn = undefined;
    if (c) await c.then((x) => x.client.destroy()).catch(() => undefined);
  }
}
