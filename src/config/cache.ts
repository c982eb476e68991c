import { createHash } from "node:crypto";
import {
  constants as C,
  closeSync,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { tempName } from "../platform/names.ts";
import { VERSION } from "../version.ts";
import type { RawConfig } from "./schema.ts";

/**
 * The cached verdict of an unchanged config (docs/design.md "Start-up"). Checking `bsched.yaml`
 * (yaml's parse, zod's schema built and run, all cold code) was about a third of `bsched list`'s
 * start-up: when a config's bytes are those checked last time, by this same program, the schema's
 * output is read back instead. Only that output is kept (the resolved config depends on the
 * file system: symbolic links, the machine's time zone, and is made again each time).
 *
 * Never a stale or foreign verdict: the key is a hash of the config's path and bytes, bsched's
 * version, Node's (and its time-zone data's), the size and mtime of the sources that make the
 * verdict (schema, loader, this file) and zod's and yaml's versions; the entry carries a hash of its own
 * content (a torn or edited file is not believed), must be a regular file of this user's, 0600, in
 * a folder of this user's that no one else may write. Any doubt, and the full check runs. Never a
 * secret's value: a config with a plain secret (warned about) is not cached; `secret:NAME`
 * references are names, not values. Never an error: a cache that cannot be read or written is
 * only not used.
 */

/** Changes when what an entry holds changes. */
const FORMAT = 1;

/** What the check of a config's text gives: the schema's output and its plain-secret warnings. */
export interface CheckedConfig {
  raw: RawConfig;
  plainSecrets: string[];
}

interface Entry {
  format: number;
  key: string;
  /** The schema's output as JSON text, and the hash of `key` and it. */
  raw: string;
  sum: string;
}

const sha256 = (...parts: string[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex");
};

/** `$XDG_CACHE_HOME/bsched` (`~/.cache/bsched`), or undefined when neither says where. */
function cacheDir(env: NodeJS.ProcessEnv): string | undefined {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, "bsched");
  const home = env.HOME;
  return home !== undefined && path.isAbsolute(home) ? path.join(home, ".cache", "bsched") : undefined;
}

/** The sources that decide a verdict, relative to this file. */
const SOURCES = [
  "./cache.ts",
  "./load.ts",
  "./schema.ts",
  "./destinations.ts",
  "./secret-keys.ts",
  "./warnings.ts",
  "../core/types.ts",
  "../secrets/names.ts",
];

/** The version of an installed package (zod, yaml): from the project's node_modules, else resolved. */
function versionOf(pkg: string): string {
  const here = import.meta.url;
  let file = fileURLToPath(new URL(`../../node_modules/${pkg}/package.json`, here));
  if (!existsSync(file)) file = createRequire(here).resolve(`${pkg}/package.json`);
  return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
}

/**
 * What makes the verdict besides the config: bsched's version, its sources (size and mtime, as
 * bin/bsched.js judges its bundle: an edit, a checkout or a pull changes them), zod's and yaml's
 * versions, Node's (the time zones it knows).
 */
function programKey(): string {
  const sources = SOURCES.map((s) => {
    const st = statSync(new URL(s, import.meta.url));
    return `${s} ${st.size} ${st.mtimeMs}`;
  });
  return sha256(
    String(FORMAT),
    VERSION,
    process.version,
    process.versions.icu ?? "",
    process.versions.tz ?? "",
    versionOf("zod"),
    versionOf("yaml"),
    ...sources,
  );
}

/** True when `st` is this user's and no one else may write it (a folder) or read it (a file). */
function ours(st: { uid: number; mode: number }, otherBits: number): boolean {
  return process.getuid !== undefined && st.uid === process.getuid() && (st.mode & otherBits) === 0;
}

function readEntry(file: string): Entry | undefined {
  const fd = openSync(file, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || !ours(st, 0o077) || st.size > 16 << 20) return undefined;
    return JSON.parse(readFileSync(fd, "utf8")) as Entry;
  } finally {
    closeSync(fd);
  }
}

function writeEntry(dir: string, file: string, entry: Entry): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, tempName(path.basename(file)));
  const fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, JSON.stringify(entry));
  } finally {
    closeSync(fd);
  }
  // No fsync: a file torn by a crash fails its `sum` and the full check runs; a cache is not
  // worth a disk flush on a command's path.
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * `check()`'s result for the config `file` whose bytes are `text`: from the cache when this
 * program checked these bytes there before, else checked now (and kept when it may be). A
 * failing check throws as it would uncached, and is never kept.
 */
export function cachedCheck(
  file: string,
  text: string,
  check: () => CheckedConfig,
  env: NodeJS.ProcessEnv = process.env,
): CheckedConfig {
  const dir = cacheDir(env);
  if (dir === undefined) return check();
  const entryFile = path.join(dir, `config-${sha256(file).slice(0, 32)}.json`);
  let key: string | undefined;
  try {
    const d = lstatSync(dir, { throwIfNoEntry: false });
    if (d !== undefined && !(d.isDirectory() && ours(d, 0o022))) return check();
    key = sha256(programKey(), file, text);
    const e = d === undefined ? undefined : readEntry(entryFile);
    if (e?.format === FORMAT && e.key === key && e.sum === sha256(key, e.raw)) {
      return { raw: JSON.parse(e.raw) as RawConfig, plainSecrets: [] };
    }
  } catch {
    // Missing, unreadable or not JSON: checked below.
  }
  const checked = check();
  if (key !== undefined && checked.plainSecrets.length === 0) {
    try {
      const raw = JSON.stringify(checked.raw);
      writeEntry(dir, entryFile, { format: FORMAT, key, raw, sum: sha256(key, raw) });
    } catch {
      // A read-only home, a full disk: the next start checks again.
    }
  }
  return checked;
}
