import path from "node:path";
import { hashPassword, MAX_PASSWORD, MIN_PASSWORD, type PasswordHash } from "../api/auth/password.ts";
import { checkUserName, readUsers, writeUsers } from "../api/auth/users.ts";
import { BschedError } from "../core/errors.ts";
import type { Clock } from "../platform/clock.ts";
import { withLockWaiting } from "../platform/lockfile.ts";
import { USERS_LOCK } from "../platform/names.ts";
import { ensureStateFolder } from "../secrets/store.ts";

/**
 * The window's users (`bsched user add|list|remove|passwd`, and the setup link's first
 * administrator): docs/design.md "The window and its API", Security. Every user is an
 * administrator. A change holds `<state>/users.lock` and rewrites users.json whole; the daemon
 * sees it at the next request.
 */

export interface UserInfo {
  name: string;
  createdAt: string;
  passwordSetAt: string;
}

/** A change takes milliseconds: a held lock is waited for (up to 15 s), not refused. */
async function withUsersLock<T>(state: string, clock: Clock, body: () => Promise<T>): Promise<T> {
  await ensureStateFolder(state);
  const file = path.join(state, USERS_LOCK);
  return withLockWaiting(file, "the users file", clock, body);
}

/** A password the window accepts: 8 to 1024 characters. The message never quotes it. */
export function checkNewPassword(password: string): string {
  if ([...password].length < MIN_PASSWORD || password.length > MAX_PASSWORD)
    throw new BschedError("USAGE", `the password must have ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`, {
      hint: "choose a longer password (a passphrase of a few words is easy to type and hard to guess)",
      fields: [{ path: ["password"], message: `${MIN_PASSWORD} to ${MAX_PASSWORD} characters` }],
    });
  return password;
}

async function newHash(password: string): Promise<PasswordHash> {
  return hashPassword(checkNewPassword(password));
}

/**
 * Add a user. `onlyIfNone`: the setup link's first administrator, refused (USER_EXISTS) once
 * any user exists, checked under the lock so two setups at once make one user.
 */
export async function addUser(opts: {
  state: string;
  name: string;
  password: string;
  clock: Clock;
  onlyIfNone?: boolean;
}): Promise<UserInfo> {
  const name = checkUserName(opts.name);
  const password = await newHash(opts.password);
  return withUsersLock(opts.state, opts.clock, async () => {
    const u = readUsers(opts.state);
    if (opts.onlyIfNone && u.users.size > 0)
      throw new BschedError(
        "USER_EXISTS",
        "the first administrator already exists: the setup link is used up",
        {
          hint: "log in, or add another user with `bsched user add NAME`",
        },
      );
    if (u.users.has(name))
      throw new BschedError("USER_EXISTS", `user ${name} already exists in ${u.file}`, {
        hint: `change the password with \`bsched user passwd ${name}\`, or choose another name`,
      });
    const now = opts.clock.now().toISOString();
    u.users.set(name, { createdAt: now, passwordSetAt: now, password });
    await writeUsers(u);
    return { name, createdAt: now, passwordSetAt: now };
  });
}

function notFound(name: string, file: string, known: string[]): BschedError {
  return new BschedError("USER_NOT_FOUND", `no user ${name} in ${file}`, {
    hint: known.length ? `users: ${known.join(", ")}` : "there are no users yet: `bsched user add NAME`",
  });
}

/** Set a user's password: their open sessions end (the daemon compares passwordSetAt). */
export async function setPassword(opts: {
  state: string;
  name: string;
  password: string;
  clock: Clock;
}): Promise<UserInfo> {
  const name = checkUserName(opts.name);
  const password = await newHash(opts.password);
  return withUsersLock(opts.state, opts.clock, async () => {
    const u = readUsers(opts.state);
    const r = u.users.get(name);
    if (!r) throw notFound(name, u.file, [...u.users.keys()]);
    const now = opts.clock.now().toISOString();
    u.users.set(name, { ...r, passwordSetAt: now, password });
    await writeUsers(u);
    return { name, createdAt: r.createdAt, passwordSetAt: now };
  });
}

/** Remove a user: their sessions end at their next request. */
export async function removeUser(opts: {
  state: string;
  name: string;
  clock: Clock;
}): Promise<{ name: string; file: string; left: number }> {
  const name = checkUserName(opts.name);
  return withUsersLock(opts.state, opts.clock, async () => {
    const u = readUsers(opts.state);
    if (!u.users.delete(name)) throw notFound(name, u.file, [...u.users.keys()]);
    await writeUsers(u);
    return { name, file: u.file, left: u.users.size };
  });
}

/** The users, by name: never a hash. */
export function listUsers(state: string): { file: string; users: UserInfo[] } {
  const u = readUsers(state);
  return {
    file: u.file,
    users: [...u.users].map(([name, r]) => ({
      name,
      createdAt: r.createdAt,
      passwordSetAt: r.passwordSetAt,
    })),
  };
}
