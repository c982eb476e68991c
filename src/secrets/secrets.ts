import { BschedError } from "../core/errors.ts";

/** A config value naming a stored secret: `secret:NAME`. */
export const SECRET_PREFIX = "secret:";

/**
 * The value of a config key that may hold a secret (a password, a secret key): the stored secret
 * when it is `secret:NAME`, else the value itself. `key` names the config key for messages
 * (`destinations.vault.password`); the error never holds a secret's value.
 */
export function resolveSecret(value: string, state: string, key: string): string {
  if (!value.startsWith(SECRET_PREFIX)) return value;
  const name = value.slice(SECRET_PREFIX.length);
  throw new BschedError("SECRET_MISSING", `${key}: the secret "${name}" is not stored in ${state}`, {
    hint: `store it with \`bsched secret set ${name}\``,
  });
}
