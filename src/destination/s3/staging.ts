import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream";
import { BschedError } from "../../core/errors.ts";
import { MANIFEST_FILE } from "../../snapshot/manifest.ts";
import type { Staging } from "../destination.ts";
import { exactly } from "../exact-size.ts";
import type { S3Conn } from "./client.ts";
import { isPreconditionFailed } from "./errors.ts";
import { keyOf } from "./keys.ts";
import { putObject } from "./multipart.ts";

/** Files of a staging folder uploaded at once (many small files: the round trips overlap). */
const FILES_AT_ONCE = 4;

export interface StagingRef {
  conn: () => Promise<S3Conn>;
  bucket: string;
  root: string;
  backup: string;
  /** The marker object's key (`<backup>/.<backup>.tmp-PID-HEX`): why a manifest-less folder lists as a run's. */
  marker: string;
  /** The local scratch folder the writers write into (stage().dir). */
  dir: string;
  /** Where the backup is, for messages. */
  where: string;
  fail: (e: unknown, doing: string) => Error;
  /** Whether the manifest object exists (published). */
  published: () => Promise<boolean>;
  deleteKeys: (keys: string[]) => Promise<void>;
}

/** Upload `body` to `key`, failing unless it is exactly `size` bytes (then nothing is left under `key`). */
export async function upload(
  conn: S3Conn,
  bucket: string,
  key: string,
  body: Readable,
  size: number,
  where: string,
) {
  const checked = pipeline(body, exactly(size, where), () => undefined);
  await putObject(conn, bucket, key, checked, size);
}

/**
 * A backup staged on S3. S3 has no rename, so every object is written under its final key and
 * the manifest LAST, with If-None-Match: * (published = manifest present, never replaced). Until
 * then the folder holds a marker object naming this run, so a listing shows it as a run's
 * leftover (`.<name>.tmp-PID-HEX`), never as a backup. Abort deletes what this staging uploaded.
 */
export function s3Staging(s: StagingRef): Staging {
  const uploaded = new Set<string>();
  let done = false;
  const put = async (file: string, body: Readable, size: number) => {
    if (done) throw new BschedError("IO", `${s.where}: this staging area is closed`, { hint: "stage again" });
    const key = keyOf(s.root, s.backup, file);
    uploaded.add(key);
    try {
      await upload(await s.conn(), s.bucket, key, body, size, `${s.where}/${file}`);
    } catch (e) {
      body.destroy();
      throw s.fail(e, `uploading ${key}`);
    }
  };
  return {
    dir: s.dir,
    put,
    async publish(manifestText: string) {
      if (done) throw new BschedError("IO", `${s.where}: already published`, { hint: "stage again" });
      if (await s.published()) {
        throw new BschedError("IO", `backup ${s.where} appeared during the run`, {
          hint: "run the backup again",
        });
      }
      const files = await localFiles(s.dir);
      // Overlapping uploads, a few at a time; the first failure stops the rest, and every upload
      // has ended before it is thrown (an abort after it then finds nothing still arriving).
      let next = 0;
      let failed: unknown;
      const worker = async () => {
        while (next < files.length && failed === undefined) {
          const f = files[next++] as { rel: string; size: number };
          await put(f.rel, createReadStream(path.join(s.dir, f.rel)), f.size).catch((e: unknown) => {
            failed ??= e;
          });
        }
      };
      await Promise.all(Array.from({ length: Math.min(FILES_AT_ONCE, files.length) }, worker));
      if (failed !== undefined) throw failed;
      const { sdk, client } = await s.conn();
      const manifestKey = keyOf(s.root, s.backup, MANIFEST_FILE);
      try {
        await client.send(
          new sdk.PutObjectCommand({
            Bucket: s.bucket,
            Key: manifestKey,
            Body: manifestText,
            ContentType: "application/json",
            IfNoneMatch: "*",
          }),
        );
      } catch (e) {
        if (isPreconditionFailed(e)) {
          throw new BschedError("IO", `backup ${s.where} appeared during the run`, {
            hint: "run the backup again",
          });
        }
        throw s.fail(e, `writing ${manifestKey}`);
      }
      done = true;
      // Published: the marker and the scratch folder are only clutter now.
      await s.deleteKeys([s.marker]).catch(() => undefined);
      await fs.rm(s.dir, { recursive: true, force: true }).catch(() => undefined);
    },
    async abort() {
      if (done) return;
      done = true;
      await s.deleteKeys([...uploaded]).catch(() => undefined);
      // The marker last: a crash before this still lists the folder as this run's leftover.
      await s.deleteKeys([s.marker]).catch(() => undefined);
      await fs.rm(s.dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

/** The regular files under a scratch folder (relative, `/`-separated), but a manifest a writer left there. */
async function localFiles(dir: string): Promise<{ rel: string; size: number }[]> {
  const out: { rel: string; size: number }[] = [];
  const walk = async (rel: string) => {
    for (const d of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel === "" ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) await walk(r);
      else if (d.isFile() && r !== MANIFEST_FILE)
        out.push({ rel: r, size: (await fs.stat(path.join(dir, r))).size });
    }
  };
  await walk("");
  return out;
}
