import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { BschedError, errnoCode } from "../../core/errors.ts";
import { writeFileAtomic } from "../../platform/fsutil.ts";
import { USERS_FILE } from "../../platform/names.ts";
import type { PasswordHash } from "./password.ts";

/**
 * The window's users, `<state>/users.json` (docs/design.md "The window and its API", Security):
 * each name with its scrypt hash and dates, nothing else. Mode 0600, written whole (temporary name,
 * fsync, rename) under `users.lock` by src/ops/users.ts; the daemon reads it at each login and
 * when a session is used (cached by size and mtime), so `bsched user remove|passwd` takes effect
 * at once, without a restart.
 */

const FORMAT = "bsched-users";
const VERSION = 1;

export interface UserRecord {
  createdAt: string;
  /** When the password was last set: a session opened before it is ended (a changed password logs everyone out). */
  passwordSetAt: string;
  password: PasswordHash;
}

export interface Users {
  file: string;
  users: Map<string, UserRecord>;
}

export function usersFile(state: string): string {
  return path.join(state, USERS_FILE);
}

/** Letters, digits, `.`, `_`, `-`, `@`, starting with a letter or digit, at most 64. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export function checkUserName(name: string): string {
  if (!NAME.test(name))
    throw new BschedError("USAGE", `"${name.slice(0, 80)}" is not a user name`, {
      hint: "letters, digits, . _ - @, starting with a letter or digit, at most 64",
      fields: [
        { path: ["user"], message: "letters, digits, . _ - @, starting with a letter or digit, at most 64" },
      ],
    });
  return name;
}

function unreadable(file: string, why: string): BschedError {
  return new BschedError("USERS_UNREADABLE", `the users file ${file} is unreadable: ${why}`, {
    hint: `restore it from a backup of the state folder, or move it aside and create the users again with \`bsched user add NAME\``,
  });
}

function isHash(h: unknown): h is PasswordHash {
  const x = h as PasswordHash;
  return (
    typeof x === "object" &&
    x !== null &&
    x.alg === "scrypt" &&
    [x.N, x.r, x.p, x.keylen].every((n) => Number.isInteger(n) && n > 0) &&
    typeof x.salt === "string" &&
    typeof x.hash === "string"
  );
}

/** The users (none when the file does not exist). A damaged file is USERS_UNREADABLE, never "no users". */
export function readUsers(state: string): Users {
  const file = usersFile(state);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if (errnoCode(e) === "ENOENT") return { file, users: new Map() };
    throw e;
  }
  let doc: { format?: unknown; version?: unknown; users?: unknown };
  try {
    doc = JSON.parse(text);
  } catch {
    throw unreadable(file, "not JSON");
  }
  if (doc?.format !== FORMAT || typeof doc.users !== "object" || doc.users === null)
    throw unreadable(file, "not a bsched users file");
  if (doc.version !== VERSION)
    throw unreadable(file, `version ${String(doc.version)} (this bsched reads ${VERSION})`);
  const users = new Map<string, UserRecord>();
  for (const [name, r] of Object.entries(doc.users as Record<string, UserRecord>)) {
    if (
      !NAME.test(name) ||
      typeof r?.createdAt !== "string" ||
      typeof r.passwordSetAt !== "string" ||
      !isHash(r.password)
    )
      throw unreadable(file, `the entry of user "${name.slice(0, 80)}" is damaged`);
    users.set(name, r);
  }
  return { file, users };
}

/** Written whole: temporary name, fsync, rename, fsync of the folder; 0600. The caller holds users.lock. */
export async function writeUsers(u: Users): Promise<void> {
  const users = Object.fromEntries([...u.users].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  await writeFileAtomic(u.file, `${JSON.stringify({ format: FORMAT, version: VERSION, users }, null, 2)}\n`, {
    mode: 0o600,
  });
}

/**
 * readUsers, re-read only when the file's size, mtime or inode changed: what a running daemon
 * calls on every request that carries a session.
 */
export function cachedUsers(state: string): () => Users {
  let key = "";
  let cached: Users | undefined;
  return () => {
    const st = statSync(usersFile(state), { throwIfNoEntry: false, bigint: true });
    const k = st ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : "none";
    if (cached === undefined || k !== key) {
      cached = readUsers(state);
      key = k;
    }
    return cached;
  };
}
