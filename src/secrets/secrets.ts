import { BschedError } from "../core/errors.ts";
import { keySource, readKey } from "./key.ts";
import { SECRET_NAME, SECRET_PREFIX } from "./names.ts";
import { decryptSecret, readStore } from "./store.ts";

export { SECRET_PREFIX } from "./names.ts";

/**
 * The value of a config key that may hold a secret (a password, a secret key): the stored secret
 * when it is `secret:NAME`, else the value itself. `key` names the config key for messages
 * (`destinations.vault.password`); the error never holds a secret's value.
 *
 * The store and its key are read at each call (a few hundred bytes): a secret set while the
 * daemon runs is used by its next run, with no reload. `env` is for tests (the key's sources).
 */
export function resolveSecret(
  value: string,
  state: string,
  key: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (!value.startsWith(SECRET_PREFIX)) return value;
  const name = value.slice(SECRET_PREFIX.length);
  if (!SECRET_NAME.test(name)) {
    throw new BschedError("CONFIG_INVALID", `${key}: "secret:NAME" with an invalid NAME`, {
      hint: "a secret's name is letters, digits, - _ and . (see `bsched secret list`)",
    });
  }
  try {
    const store = readStore(state);
    if (!store.secrets.has(name)) {
      throw new BschedError("SECRET_MISSING", `${key}: the secret "${name}" is not stored in ${store.file}`, {
        hint: `store it with \`bsched secret set ${name}\``,
      });
    }
    const source = keySource(state, env);
    const k = readKey(source);
    if (k === undefined) {
      throw new BschedError(
        "SECRET_UNREADABLE",
        `${key}: the secret "${name}" is stored in ${store.file} but its key ${source.file} is missing`,
        {
          hint: "put back the key file that encrypted the store (or point $BSCHED_SECRET_KEY_FILE at it); without it, store the secret again with `bsched secret set`",
        },
      );
    }
    return decryptSecret(store, k, name);
  } catch (e) {
    // Every message names the config key the value was for.
    if (e instanceof BschedError && !e.message.startsWith(`${key}: `)) {
      throw new BschedError(e.code, `${key}: ${e.message}`, { hint: e.hint, exitCode: e.exitCode, cause: e });
    }
    throw e;
  }
}
