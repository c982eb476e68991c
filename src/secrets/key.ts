import { createHmac, randomBytes } from "node:crypto";
import {
  constants as C,
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { BschedError, errnoCode } from "../core/errors.ts";
import { SECRET_KEY_FILE } from "../platform/names.ts";

/**
 * The key that encrypts the secret store: 32 bytes, from the first of
 *  1. the file named by $BSCHED_SECRET_KEY_FILE;
 *  2. systemd's credential `bsched-secret-key` (`LoadCredential=bsched-secret-key:/path` puts it
 *     in $CREDENTIALS_DIRECTORY);
 *  3. `<state>/secret.key`, created 0600 by the first `bsched secret set`.
 * A key file is 32 raw bytes, or them written as 64 hex digits or base64 (what `openssl rand
 * -hex 32` and `-base64 32` print); bsched writes hex. One that the group or others may read is
 * refused: the key would then protect nothing.
 */

export const KEY_FILE = SECRET_KEY_FILE;
export const CREDENTIAL_NAME = "bsched-secret-key";

export interface KeySource {
  file: string;
  /** Where it came from, for messages: `$BSCHED_SECRET_KEY_FILE`, `systemd credential`, `the state folder`. */
  from: string;
  /** Only the state folder's key is created when missing; one named by the environment must exist. */
  creatable: boolean;
}

export interface SecretKey {
  key: Buffer;
  /** A short fingerprint (HMAC of a constant): tells "another key" from "damaged", reveals nothing. */
  id: string;
  source: KeySource;
}

export function keySource(state: string, env: NodeJS.ProcessEnv = process.env): KeySource {
  const named = env.BSCHED_SECRET_KEY_FILE;
  if (named !== undefined && named !== "") {
    return { file: path.resolve(named), from: "$BSCHED_SECRET_KEY_FILE", creatable: false };
  }
  const creds = env.CREDENTIALS_DIRECTORY;
  if (creds !== undefined && creds !== "") {
    const file = path.join(creds, CREDENTIAL_NAME);
    if (readable(file)) return { file, from: "systemd credential", creatable: false };
  }
  return { file: path.join(state, KEY_FILE), from: "the state folder", creatable: true };
}

function readable(file: string): boolean {
  try {
    closeSync(openSync(file, C.O_RDONLY));
    return true;
  } catch {
    return false;
  }
}

export function keyId(key: Buffer): string {
  return createHmac("sha256", key).update("bsched secret store key id v1").digest("hex").slice(0, 16);
}

/** The key, or undefined when its file does not exist (and may be created). */
export function readKey(source: KeySource): SecretKey | undefined {
  let fd: number;
  try {
    fd = openSync(source.file, C.O_RDONLY | (source.creatable ? C.O_NOFOLLOW : 0));
  } catch (e) {
    if (errnoCode(e) === "ENOENT" && source.creatable) return undefined;
    throw new BschedError(
      "SECRET_UNREADABLE",
      `cannot read the secret key ${source.file} (${source.from}): ${errnoCode(e) ?? (e as Error).message}`,
      {
        hint: source.creatable
          ? `it must be a regular file readable by the user bsched runs as (chmod 600 ${source.file})`
          : `point ${source.from} at the key file that encrypted the store (32 bytes, 0600)`,
        cause: e,
      },
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new BschedError(
        "SECRET_UNREADABLE",
        `the secret key ${source.file} (${source.from}) is not a regular file`,
        {
          hint: "point it at the key file (32 bytes, 0600)",
        },
      );
    }
    if ((st.mode & 0o077) !== 0) {
      throw new BschedError(
        "SECRET_UNREADABLE",
        `the secret key ${source.file} (${source.from}) may be read or written by others (mode ${(st.mode & 0o777).toString(8)}): refused`,
        { hint: `chmod 600 ${source.file} (and check who could have copied it)` },
      );
    }
    const buf = Buffer.alloc(256);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const key = parseKey(buf.subarray(0, n));
    buf.fill(0);
    if (key === undefined) {
      throw new BschedError(
        "SECRET_UNREADABLE",
        `the secret key ${source.file} (${source.from}) is not a 32-byte key`,
        {
          hint: "a key file holds 32 bytes, raw or as 64 hex digits or base64 (`openssl rand -hex 32`); use the one that encrypted the store",
        },
      );
    }
    return { key, id: keyId(key), source };
  } finally {
    closeSync(fd);
  }
}

function parseKey(raw: Buffer): Buffer | undefined {
  if (raw.length === 32) return Buffer.from(raw);
  const text = raw.toString("latin1").trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex");
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Buffer.from(text, "base64");
  return undefined;
}

/**
 * The state folder's key, created when missing: 32 random bytes as hex, 0600, created with
 * O_EXCL (two first `secret set` at once: one creates, the other reads it), fsynced with its folder.
 */
export function readOrCreateKey(source: KeySource): { key: SecretKey; created: boolean } {
  const found = readKey(source);
  if (found !== undefined) return { key: found, created: false };
  const dir = path.dirname(source.file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  let fd: number;
  try {
    fd = openSync(source.file, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  } catch (e) {
    if (errnoCode(e) === "EEXIST") return { key: readKey(source) as SecretKey, created: false };
    throw e;
  }
  try {
    writeSync(fd, `${key.toString("hex")}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const dfd = openSync(dir, C.O_RDONLY | C.O_DIRECTORY);
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
  return { key: { key, id: keyId(key), source }, created: true };
}
