import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream";
import { BschedError } from "../../core/errors.ts";
import { inParallel } from "../../core/parallel.ts";
import { MANIFEST_FILE } from "../../snapshot/manifest.ts";
import type { Staging } from "../destination.ts";
import { exactly } from "../exact-size.ts";
import type { S3Conn } from "./client.ts";
import { etagMismatch, isPreconditionFailed, type S3Where } from "./errors.ts";
import { keyOf } from "./keys.ts";
import { Sender } from "./multipart.ts";

/** Files of a staging folder read at once. */
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
  /** The destination, for the words of a failed check. */
  w: S3Where;
  /** Compare each object's ETag with the MD5s sent (`verify: checksum`): see multipart.ts. */
  etags: boolean;
  /** Whether the manifest object exists (published). */
  published: () => Promise<boolean>;
  deleteKeys: (keys: string[]) => Promise<void>;
}

/**
 * A backup staged on S3. S3 has no rename, so every object is written under its final key and
 * the manifest LAST, with If-None-Match: * (published = manifest present, never replaced), once
 * every upload has ended well. Until then the folder holds a marker object naming this run, so a
 * listing shows it as a run's leftover (`.<name>.tmp-PID-HEX`), never as a backup. Each put is
 * checked by the server (multipart.ts Sender: Content-MD5, then ETags): `checkedOnPut` when the
 * ETags are compared too (`verify: checksum`). Abort cuts what is still going up, then deletes
 * what this staging uploaded.
 */
export function s3Staging(s: StagingRef): Staging {
  const uploaded = new Set<string>();
  let sender: Sender | undefined;
  let done = false;
  const senderOf = async () => {
    sender ??= new Sender({ conn: await s.conn(), bucket: s.bucket, w: s.w, fail: s.fail, etags: s.etags });
    return sender;
  };
  const put = async (file: string, body: Readable, size: number) => {
    if (done) throw new BschedError("IO", `${s.where}: this staging area is closed`, { hint: "stage again" });
    const key = keyOf(s.root, s.backup, file);
    uploaded.add(key);
    const checked = pipeline(body, exactly(size, `${s.where}/${file}`), () => undefined);
    try {
      await (await senderOf()).put(key, checked, size);
    } catch (e) {
      body.destroy();
      checked.destroy();
      throw s.fail(e, `uploading ${key}`);
    }
  };
  return {
    dir: s.dir,
    checkedOnPut: s.etags,
    put,
    async publish(manifestText: string) {
      if (done) throw new BschedError("IO", `${s.where}: already published`, { hint: "stage again" });
      const files = await localFiles(s.dir);
      if (files.length > 0 && (await s.published())) {
        throw new BschedError("IO", `backup ${s.where} appeared during the run`, {
          hint: "run the backup again",
        });
      }
      // What the writers left in the scratch folder (a backup whose folder is this bucket), read a
      // few at a time: each put returns once read, the pool bounds what is in flight.
      await inParallel(files, FILES_AT_ONCE, (f) =>
        put(f.rel, createReadStream(path.join(s.dir, f.rel)), f.size),
      );
      // Every object whole and checked before the manifest: published means whole.
      await sender?.settle();
      const { sdk, client } = await s.conn();
      const manifestKey = keyOf(s.root, s.backup, MANIFEST_FILE);
      const md5 = createHash("md5").update(manifestText).digest();
      let etag: string | undefined;
      try {
        const r = await client.send(
          new sdk.PutObjectCommand({
            Bucket: s.bucket,
            Key: manifestKey,
            Body: manifestText,
            ContentType: "application/json",
            ContentMD5: md5.toString("base64"),
            IfNoneMatch: "*",
          }),
        );
        etag = r.ETag;
      } catch (e) {
        if (isPreconditionFailed(e)) {
          throw new BschedError("IO", `backup ${s.where} appeared during the run`, {
            hint: "run the backup again",
          });
        }
        throw s.fail(e, `writing ${manifestKey}`);
      }
      if (s.etags && (etag ?? "").replaceAll('"', "").toLowerCase() !== md5.toString("hex")) {
        // Not as written: unpublished at once (abort then removes the rest).
        await s.deleteKeys([manifestKey]).catch(() => undefined);
        throw etagMismatch(s.w, manifestKey, etag, md5.toString("hex"));
      }
      done = true;
      // Published: the marker and the scratch folder are only clutter now.
      await s.deleteKeys([s.marker]).catch(() => undefined);
      await fs.rm(s.dir, { recursive: true, force: true }).catch(() => undefined);
    },
    async abort() {
      if (done) return;
      done = true;
      await sender?.cancel();
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
