import { BschedError } from "../core/errors.ts";

/** A config value naming a stored secret: `secret:NAME`. */
export const SECRET_PREFIX = "secret:";

/**
 * A secret's name: letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most 64.
 * Safe in a file, a message and a shell command line (`bsched secret set NAME`) as it is.
 */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** True for a string of the form `secret:NAME` (any NAME: resolveSecret words a bad one). */
export function isSecretReference(value: unknown): value is string {
  return typeof value === "string" && value.startsWith(SECRET_PREFIX);
}

/** `name` when it is a valid secret name; USAGE otherwise (`what` says where it came from). */
export function checkSecretName(name: string, what = "secret name"): string {
  if (!SECRET_NAME.test(name)) {
    throw new BschedError(
      "USAGE",
      `${what}: ${JSON.stringify(name.slice(0, 80))} is not a valid secret name`,
      { hint: "use letters, digits, - _ and . (starting with a letter or digit), at most 64 characters" },
    );
  }
  return name;
}
