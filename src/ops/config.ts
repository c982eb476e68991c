import { applyChanges, type ConfigChange, keyPath, maskSecrets } from "../config/edit.ts";
import { changedMeanwhile, hashText, readConfigText, replaceConfigText } from "../config/file.ts";
import { type Config, findConfigFile, parseConfig } from "../config/load.ts";
import { MASK, maskSecretFields, plainSecretsIn, secretConfigKeys } from "../config/secret-keys.ts";
import { BschedError } from "../core/errors.ts";
import { throwIfAborted } from "./context.ts";

export type { ConfigChange, ConfigKey } from "../config/edit.ts";
export { keyPath } from "../config/edit.ts";
export { hashText } from "../config/file.ts";

/**
 * Read and change the config file: what `bsched config` and, next, the web window call.
 *
 * A change is made on the YAML text itself, only the changed key's bytes (src/config/edit.ts), so
 * every comment, blank line and alignment elsewhere stays byte for byte. The result is checked by
 * the same schema and checks as `loadConfig` before anything is written, and written with a
 * temporary name, fsync and rename (src/config/file.ts). A file that changed since it was read
 * (another editor, another window) is refused, never overwritten.
 */

export interface ConfigRead {
  /** Absolute path of the config file. */
  file: string;
  /** The file's text as it is on disk. */
  text: string;
  /** sha256 of `text`: give it back to changeConfig to refuse a change made meanwhile by someone else. */
  hash: string;
  /** The config as the program loads it (paths absolute, defaults filled in). */
  config: Config;
}

export interface ConfigChangeResult extends ConfigRead {
  /** False when nothing had to change (the value was already so, or the key was already absent). */
  changed: boolean;
}

export { MASK };

/** The config file as it is on disk and as it loads. `file`: as --config (default $BSCHED_CONFIG, ./bsched.yaml). */
export function readConfig(file?: string, signal?: AbortSignal): ConfigRead {
  throwIfAborted(signal);
  const abs = findConfigFile(file);
  const text = readConfigText(abs);
  return { file: abs, text, hash: hashText(text), config: parseConfig(text, abs) };
}

/** What `config show` prints: the text and the document with secret values masked, and the config as loaded. */
export interface ConfigShown {
  file: string;
  hash: string;
  /** The YAML text, each secret value replaced by MASK in place (everything else as on disk). */
  text: string;
  /** The YAML document as data (masked the same way). */
  document: unknown;
  /** The config as loaded: absolute paths, defaults filled in. */
  config: Record<string, unknown>;
  warnings: string[];
}

/**
 * `secretKeys`: keys whose values are masked, in the text and the document (`*` matches one
 * segment): the schema's secret-valued keys (src/config/secret-keys.ts). A `secret:NAME` reference
 * is shown as it is; anything else there is a secret written plain and is never shown back. `hash`
 * is of the real text.
 */
export function showConfig(
  read: ConfigRead,
  secretKeys: readonly (readonly string[])[] = secretConfigKeys(),
): ConfigShown {
  const { text, document } = maskSecrets(read.text, secretKeys, MASK);
  const c = read.config;
  return {
    file: read.file,
    hash: read.hash,
    text,
    document,
    // The sets as loaded carry their destinations' configs (copies, folderSpec): masked the same way.
    config: maskSecretFields({
      file: c.file,
      root: c.root,
      backupFolder: c.backupFolder,
      timezone: c.timezone,
      state: c.state,
      concurrency: c.concurrency,
      sets: Object.fromEntries([...c.sets].map(([id, s]) => [id, s])),
    }) as Record<string, unknown>,
    warnings: c.warnings,
  };
}

/**
 * Apply `changes` to the config file: set or unset keys, check the result with the config
 * schema, and write it atomically. Refused, with the file untouched: a result the schema refuses
 * (CONFIG_INVALID, its message naming the key and what is allowed), a file that changed since
 * `expectedHash` was read or while this ran (CONFIG_CHANGED), a file the user may not write
 * (PERMISSION_DENIED naming it).
 */
export async function changeConfig(opts: {
  file?: string | undefined;
  changes: readonly ConfigChange[];
  /** The `hash` of the ConfigRead the change is based on; omitted: the file as read now. */
  expectedHash?: string | undefined;
  signal?: AbortSignal | undefined;
}): Promise<ConfigChangeResult> {
  throwIfAborted(opts.signal);
  refusePlainSecrets(opts.changes);
  const file = findConfigFile(opts.file);
  const text = readConfigText(file);
  const hash = hashText(text);
  if (opts.expectedHash !== undefined && opts.expectedHash !== hash) throw changedMeanwhile(file);

  const next = applyChanges(text, opts.changes);
  // The same checks as loading it: the schema (its message names the key, the value and what is
  // allowed) and the checks on paths. Nothing is written when they refuse.
  let config: Config;
  try {
    config = parseConfig(next, file);
  } catch (e) {
    if (!(e instanceof BschedError)) throw e;
    throw new BschedError(e.code, e.message, {
      hint: `nothing was written: ${file} is as it was; give the key a value the message allows`,
      exitCode: e.exitCode,
      cause: e,
      ...(e.fields === undefined ? {} : { fields: e.fields }),
    });
  }
  if (next === text) return { file, text, hash, config, changed: false };

  throwIfAborted(opts.signal);
  await replaceConfigText(file, hash, next);
  return { file, text: next, hash: hashText(next), config, changed: true };
}

/**
 * A change that would write a secret's value into the config is refused (USAGE), whoever asks:
 * the file is read by more people than the secret should be, and `config set KEY VALUE` has put
 * the value in the process list already. The message names the key, never the value.
 */
function refusePlainSecrets(changes: readonly ConfigChange[]): void {
  for (const change of changes) {
    if ("unset" in change) continue;
    const at = keyPath(change.key);
    const plain = plainSecretsIn(change.value, at);
    if (plain.length === 0) continue;
    const key = plain[0] as string;
    const owner = key.startsWith("destinations.") ? (key.split(".")[1] as string) : "service";
    throw new BschedError(
      "USAGE",
      `${key} holds a secret: bsched does not write its value into the config; nothing was written`,
      {
        hint:
          `store it with \`bsched secret set ${owner}\` (asked without echo), then \`bsched config set ${key} secret:${owner}\`; ` +
          "if you typed the value on a command line, consider it seen (shell history, process list) and change it",
      },
    );
  }
}
