import type { z } from "zod";
import { lazy } from "../core/lazy.ts";
import { isSecretReference, SECRET_PREFIX } from "../secrets/names.ts";
import { destinationSchemas } from "./destinations.ts";
import { schemas } from "./schema.ts";

/**
 * The config keys that hold a secret, found in the schema itself: every key whose schema is
 * `secretValue` (src/config/destinations.ts), through optional/default wrappers, unions and
 * records (`*` stands for any one segment: a destination's name). A key added to the schema with
 * `secretValue` is masked, warned about and refused in `config set` with no list to update.
 */
export function secretKeysOf(schema: z.ZodType): string[][] {
  const found = new Map<string, string[]>();
  const { secretValue } = destinationSchemas();
  const walk = (s: z.ZodType, at: string[]) => {
    if (s === secretValue) {
      found.set(at.join("."), at);
      return;
    }
    const def = (s as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
    switch (def.type) {
      case "object":
        for (const [k, v] of Object.entries(def.shape as Record<string, z.ZodType>)) walk(v, [...at, k]);
        break;
      case "optional":
      case "nullable":
      case "default":
      case "prefault":
      case "readonly":
      case "catch":
      case "nonoptional":
        walk(def.innerType as z.ZodType, at);
        break;
      case "union":
        for (const o of def.options as z.ZodType[]) walk(o, at);
        break;
      case "record":
        walk(def.valueType as z.ZodType, [...at, "*"]);
        break;
      case "pipe":
        walk(def.in as z.ZodType, at);
        break;
    }
  };
  walk(schema, []);
  return [...found.values()];
}

/**
 * `server.serviceLogin.password`, `destinations.*.password`, `destinations.*.login.password`…
 * Found at the first call: walking the schema builds it, which a cached config check avoids.
 */
export const secretConfigKeys: () => readonly (readonly string[])[] = lazy(() =>
  secretKeysOf(schemas().configSchema),
);

/** The last segments of secretConfigKeys() (`password`, `passphrase`, `secretAccessKey`): a field of that name holds a secret wherever it is. */
export const secretFields: () => ReadonlySet<string> = lazy(
  () => new Set(secretConfigKeys().map((k) => k[k.length - 1] as string)),
);

/** True when `at` (a key's segments) is one of `keys`, `*` matching any one segment. */
export function matchesKey(
  at: readonly string[],
  keys: readonly (readonly string[])[] = secretConfigKeys(),
): boolean {
  return keys.some((k) => k.length === at.length && k.every((seg, i) => seg === "*" || seg === at[i]));
}

/**
 * The secret keys in `value` (a config document, or the value `config set` puts at `base`) that
 * hold something other than a `secret:NAME` reference, as dotted key paths. Never their values.
 */
export function plainSecretsIn(value: unknown, base: readonly string[] = []): string[] {
  const out: string[] = [];
  const walk = (v: unknown, at: string[]) => {
    if (at.length > 0 && matchesKey(at)) {
      if (v !== undefined && v !== null && !isSecretReference(v)) out.push(at.join("."));
      return;
    }
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
    }
  };
  walk(value, [...base]);
  return out;
}

/** Every `secret:NAME` under a secret key of `value` (a config document): the key and the NAME. */
export function secretReferencesIn(
  value: unknown,
  base: readonly string[] = [],
): { key: string; name: string }[] {
  const out: { key: string; name: string }[] = [];
  const walk = (v: unknown, at: string[]) => {
    if (at.length > 0 && matchesKey(at)) {
      if (isSecretReference(v)) out.push({ key: at.join("."), name: v.slice(SECRET_PREFIX.length) });
      return;
    }
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, [...at, k]);
    }
  };
  walk(value, [...base]);
  return out;
}

export const MASK = "********";

/**
 * A deep copy of `value` with every field named as a secret (secretFields()) that holds anything
 * but a `secret:NAME` reference replaced by MASK: for what is printed of a config as loaded
 * (`config show --json`'s resolved sets, whose copies carry their destination's config) and for
 * the values an error message quotes.
 */
export function maskSecretFields(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecretFields);
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Map) return maskSecretFields(Object.fromEntries(value));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      secretFields().has(k) && v !== undefined && v !== null && !isSecretReference(v)
        ? MASK
        : maskSecretFields(v),
    ]),
  );
}

/**
 * pino's redact paths for the daemon's log: a secret field at any depth up to 5 (bsched never
 * logs a config object; this keeps one logged by mistake from showing a plain secret).
 */
export const secretLogPaths: () => readonly string[] = lazy(() =>
  [...secretFields()].flatMap((f) =>
    [0, 1, 2, 3, 4].map((depth) => [...Array(depth).fill("*"), f].join(".")),
  ),
);

/**
 * Advice for each secret key of the config (as the schema gave it) holding a plain value: anyone
 * who reads the file reads it. Names the key and a `bsched secret set` to run, never the value.
 */
export function plainSecretWarnings(raw: unknown): string[] {
  return plainSecretsIn(raw).map((key) => {
    const segs = key.split(".");
    const field = segs[segs.length - 1] as string;
    const owner =
      segs[0] === "destinations" ? (segs[1] as string) : segs.includes("email") ? "smtp" : "service";
    const name = field === "passphrase" ? `${owner}-passphrase` : owner;
    return (
      `${key}: a plain secret in the config file (whoever reads the file or a copy of it reads the secret); ` +
      `store it with \`bsched secret set ${name}\` and write \`${field}: secret:${name}\``
    );
  });
}
