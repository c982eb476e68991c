import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { BschedError, errnoCode } from "../core/errors.ts";
import { writeFileAtomic } from "../platform/fsutil.ts";
import { SECRET_STORE } from "../platform/names.ts";
import type { SecretKey } from "./key.ts";
import { SECRET_NAME } from "./names.ts";

/**
 * The secret store, `<state>/secrets.json` (docs/design.md "Secrets"): names in clear (so `secret
 * list` needs no key), each value encrypted alone with AES-256-GCM under a random 12-byte IV,
 * its name bound as additional authenticated data (a value moved to another name fails to
 * decrypt), and the key's fingerprint, so that "another key" and "damaged" are told apart.
 * Written whole under a temporary name, fsynced, renamed, mode 0600.
 */

export const STORE_FILE = SECRET_STORE;
const FORMAT = "bsched-secrets";
const VERSION = 1;

export interface StoredSecret {
  /** When it was set (ISO 8601). */
  setAt: string;
  iv: string;
  tag: string;
  value: string;
}

export interface SecretStore {
  file: string;
  /** The fingerprint of the key every value is encrypted with; undefined while the store is empty. */
  keyId: string | undefined;
  secrets: Map<string, StoredSecret>;
}

export function storeFile(state: string): string {
  return path.join(state, STORE_FILE);
}

function damaged(file: string, why: string): BschedError {
  return new BschedError("SECRET_UNREADABLE", `the secret store ${file} is damaged: ${why}`, {
    hint: `restore ${file} from a copy; or move it aside and store each secret again with \`bsched secret set NAME\``,
  });
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The store as it is on disk (empty when the file does not exist). Never decrypts anything. */
export function readStore(state: string): SecretStore {
  const file = storeFile(state);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return { file, keyId: undefined, secrets: new Map() };
    throw new BschedError(
      "SECRET_UNREADABLE",
      `cannot read the secret store ${file}: ${errnoCode(e) ?? (e as Error).message}`,
      {
        hint: `the user bsched runs as must be able to read ${file} (mode 0600, its owner)`,
        cause: e,
      },
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw damaged(file, "not JSON");
  }
  const d = doc as { format?: unknown; version?: unknown; keyId?: unknown; secrets?: unknown };
  if (d === null || typeof d !== "object" || d.format !== FORMAT)
    throw damaged(file, "not a bsched secret store");
  if (d.version !== VERSION) {
    throw new BschedError(
      "SECRET_UNREADABLE",
      `the secret store ${file} is of version ${String(d.version)}, this bsched reads ${VERSION}`,
      {
        hint: "use the bsched that wrote it (or a newer one)",
      },
    );
  }
  if (d.keyId !== undefined && (typeof d.keyId !== "string" || !/^[0-9a-f]{16}$/.test(d.keyId))) {
    throw damaged(file, "bad keyId");
  }
  if (d.secrets === null || typeof d.secrets !== "object" || Array.isArray(d.secrets))
    throw damaged(file, "no secrets map");
  const secrets = new Map<string, StoredSecret>();
  for (const [name, raw] of Object.entries(d.secrets as Record<string, unknown>)) {
    const s = raw as Partial<StoredSecret> | null;
    const ok =
      SECRET_NAME.test(name) &&
      s !== null &&
      typeof s === "object" &&
      typeof s.setAt === "string" &&
      typeof s.iv === "string" &&
      typeof s.tag === "string" &&
      typeof s.value === "string" &&
      B64.test(s.iv) &&
      B64.test(s.tag) &&
      B64.test(s.value) &&
      Buffer.from(s.iv, "base64").length === 12 &&
      Buffer.from(s.tag, "base64").length === 16;
    if (!ok) throw damaged(file, `the entry ${JSON.stringify(name.slice(0, 80))} is malformed`);
    secrets.set(name, {
      setAt: s.setAt as string,
      iv: s.iv as string,
      tag: s.tag as string,
      value: s.value as string,
    });
  }
  if (secrets.size > 0 && d.keyId === undefined) throw damaged(file, "no keyId");
  return { file, keyId: secrets.size > 0 ? (d.keyId as string) : undefined, secrets };
}

/** The state folder, created (0700) by the first `secret set` on a fresh machine. */
export async function ensureStateFolder(state: string): Promise<void> {
  await mkdir(state, { recursive: true, mode: 0o700 });
}

/** Written whole: temporary name, fsync, rename, fsync of the folder; 0600. */
export async function writeStore(store: SecretStore): Promise<void> {
  const secrets = Object.fromEntries([...store.secrets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const doc = {
    format: FORMAT,
    version: VERSION,
    cipher: "aes-256-gcm",
    ...(store.secrets.size > 0 && store.keyId !== undefined ? { keyId: store.keyId } : {}),
    secrets,
  };
  await writeFileAtomic(store.file, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
}

function aad(name: string): Buffer {
  return Buffer.from(`bsched-secret v1 ${name}`, "utf8");
}

export function encryptSecret(key: SecretKey, name: string, value: string, setAt: Date): StoredSecret {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key.key, iv);
  cipher.setAAD(aad(name));
  const data = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
  return {
    setAt: setAt.toISOString(),
    iv: iv.toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
    value: data.toString("base64"),
  };
}

/**
 * The value of `name`: refused (SECRET_UNREADABLE, naming the file and the key's source) when the
 * store was written with another key, or when the entry does not authenticate (altered, or moved
 * from another name). Never garbage: GCM checks every byte and the name.
 */
export function decryptSecret(store: SecretStore, key: SecretKey, name: string): string {
  const s = store.secrets.get(name);
  if (s === undefined) throw new Error(`no secret ${name}`);
  if (store.keyId !== key.id) {
    throw new BschedError(
      "SECRET_UNREADABLE",
      `the secret store ${store.file} was encrypted with another key than ${key.source.file} (${key.source.from}; key id ${key.id}, the store's ${store.keyId})`,
      {
        hint: "supply the key that wrote the store ($BSCHED_SECRET_KEY_FILE, the systemd credential bsched-secret-key, or <state>/secret.key); without it, store each secret again",
      },
    );
  }
  try {
    const decipher = createDecipheriv("aes-256-gcm", key.key, Buffer.from(s.iv, "base64"));
    decipher.setAAD(aad(name));
    decipher.setAuthTag(Buffer.from(s.tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(s.value, "base64")), decipher.final()]).toString(
      "utf8",
    );
  } catch {
    throw new BschedError(
      "SECRET_UNREADABLE",
      `the secret "${name}" in ${store.file} does not authenticate: it was altered, or moved from another name`,
      {
        hint: `store it again with \`bsched secret set ${name}\``,
      },
    );
  }
}
