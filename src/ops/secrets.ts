import path from "node:path";
import type { Config } from "../config/load.ts";
import { secretReferencesIn } from "../config/secret-keys.ts";
import { BschedError } from "../core/errors.ts";
import type { Clock } from "../platform/clock.ts";
import { withLockWaiting } from "../platform/lockfile.ts";
import { SECRET_STORE_LOCK } from "../platform/names.ts";
import { keySource, readKey, readOrCreateKey, type SecretKey } from "../secrets/key.ts";
import { checkSecretName } from "../secrets/names.ts";
import {
  encryptSecret,
  ensureStateFolder,
  readStore,
  type SecretStore,
  storeFile,
  writeStore,
} from "../secrets/store.ts";

/**
 * The secret store's use cases (`bsched secret set|list|remove`; docs/design.md "Secrets"). Each
 * takes the state folder: the store and, by default, its key live there. A change takes the
 * store's lock file, so two `secret set` at once both land; readers (resolveSecret) need no lock,
 * the file being replaced whole.
 */

export interface SecretSetResult {
  name: string;
  file: string;
  setAt: string;
  /** True when it replaced a value of the same name. */
  replaced: boolean;
  /** The key file used, and whether this call created it. */
  keyFile: string;
  keyFrom: string;
  keyCreated: boolean;
}

/**
 * Run `body` holding the store's lock. A change takes milliseconds, so a held lock is waited for
 * (up to 15 s) rather than refused: two `secret set` at once both land.
 */
async function withStoreLock<T>(state: string, clock: Clock, body: () => Promise<T>): Promise<T> {
  const file = path.join(state, SECRET_STORE_LOCK);
  return withLockWaiting(file, "the secret store", clock, body);
}

/** Store `value` under `name` (replacing one of that name): encrypted with the key, created at the first use. */
export async function setSecret(opts: {
  state: string;
  name: string;
  value: string;
  clock: Clock;
  env?: NodeJS.ProcessEnv;
}): Promise<SecretSetResult> {
  const name = checkSecretName(opts.name);
  if (opts.value === "") {
    throw new BschedError("USAGE", `secret ${name}: the value is empty; nothing stored`, {
      hint: "give a value (an empty password is no secret; leave the key out of the config instead)",
    });
  }
  const source = keySource(opts.state, opts.env);
  await ensureStateFolder(opts.state);
  return withStoreLock(opts.state, opts.clock, async () => {
    const store = readStore(opts.state);
    if (store.keyId !== undefined && source.creatable) {
      // A store with values but no key: a new key would make every stored value unreadable.
      if (readKey(source) === undefined) {
        throw new BschedError(
          "SECRET_UNREADABLE",
          `the secret store ${store.file} holds ${store.secrets.size} secret(s) but their key ${source.file} is missing: refusing to make a new key`,
          {
            hint: "put back the key file that encrypted the store (or point $BSCHED_SECRET_KEY_FILE at it); or move the store aside to start a new one",
          },
        );
      }
    }
    // A key named by the environment must exist: readKey refuses a missing one.
    const { key, created } = source.creatable
      ? readOrCreateKey(source)
      : { key: readKey(source) as SecretKey, created: false };
    if (store.keyId !== undefined && store.keyId !== key.id) {
      throw new BschedError(
        "SECRET_UNREADABLE",
        `the secret store ${store.file} was encrypted with another key than ${key.source.file} (${key.source.from}; key id ${key.id}, the store's ${store.keyId}): nothing stored`,
        {
          hint: "supply the key that wrote the store; or move the store aside and store each secret again",
        },
      );
    }
    const setAt = opts.clock.now();
    const replaced = store.secrets.has(name);
    const next: SecretStore = {
      file: store.file,
      keyId: key.id,
      secrets: new Map(store.secrets).set(name, encryptSecret(key, name, opts.value, setAt)),
    };
    await writeStore(next);
    return {
      name,
      file: store.file,
      setAt: setAt.toISOString(),
      replaced,
      keyFile: key.source.file,
      keyFrom: key.source.from,
      keyCreated: created,
    };
  });
}

export interface SecretListed {
  name: string;
  setAt: string;
}

/** A `secret:NAME` in the config: the key that holds it and the NAME. */
export interface SecretReference {
  key: string;
  name: string;
}

/** Every `secret:NAME` the config names (server.serviceLogin, each destination). */
export function secretReferences(config: Config): SecretReference[] {
  const refs: SecretReference[] = [];
  // The config keeps server.serviceLogin in each destination's spec (the one its SMB logins use).
  const login = config.destinations.values().next().value?.serviceLogin;
  if (login !== undefined) refs.push(...secretReferencesIn(login, ["server", "serviceLogin"]));
  for (const [name, d] of config.destinations)
    refs.push(...secretReferencesIn(d.config, ["destinations", name]));
  return refs;
}

/**
 * The names stored and when each was set, by name; never a value (and no key needed). With the
 * config: the references it holds to names that are not stored (`missing`), which would fail.
 */
export function listSecrets(
  state: string,
  config?: Config,
): { file: string; secrets: SecretListed[]; missing: SecretReference[] } {
  const store = readStore(state);
  return {
    file: store.file,
    secrets: [...store.secrets]
      .map(([name, s]) => ({ name, setAt: s.setAt }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    missing: config === undefined ? [] : secretReferences(config).filter((r) => !store.secrets.has(r.name)),
  };
}

/** Remove `name` from the store; SECRET_MISSING when it is not there. The key stays. */
export async function removeSecret(opts: {
  state: string;
  name: string;
  clock: Clock;
}): Promise<{ name: string; file: string }> {
  const name = checkSecretName(opts.name);
  const file = storeFile(opts.state);
  const missing = () =>
    new BschedError("SECRET_MISSING", `the secret "${name}" is not stored in ${file}`, {
      hint: "`bsched secret list` shows the names stored",
    });
  const store = readStore(opts.state);
  if (!store.secrets.has(name)) throw missing();
  return withStoreLock(opts.state, opts.clock, async () => {
    const now = readStore(opts.state);
    if (!now.secrets.has(name)) throw missing();
    const secrets = new Map(now.secrets);
    secrets.delete(name);
    await writeStore({ file: now.file, keyId: now.keyId, secrets });
    return { name, file };
  });
}
