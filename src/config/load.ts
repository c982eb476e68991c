import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { BschedError, type FieldError } from "../core/errors.ts";
import { realExisting } from "../platform/os-errors.ts";
import { type CheckedConfig, cachedCheck } from "./cache.ts";
import { whereOf } from "./destinations.ts";
import {
  type DestinationConfig,
  type EmailConfig,
  everySeconds,
  type NotifyConfig,
  type RawConfig,
  type RawDrill,
  type RawSet,
  type ServiceLogin,
  schemas,
  sizeBytes,
} from "./schema.ts";
import { maskSecretFields, matchesKey, plainSecretWarnings, secretFields } from "./secret-keys.ts";

/**
 * Everything needed to open one destination (openDestination in src/destination/open.ts): its
 * config entry (secrets still `secret:NAME`), the state folder (where secrets are kept, and a
 * remote destination's scratch space for backups written there), and the service login.
 */
export interface DestinationSpec {
  name: string;
  config: DestinationConfig;
  state: string;
  serviceLogin?: ServiceLogin;
}

import { DEFAULT_FULL_EVERY, setWarnings } from "./warnings.ts";

/**
 * What resolveConfig makes of a set's keys beyond what the schema gives: absolute paths, and
 * the defaults that depend on other keys. Every other key of SetConfig is the schema's output
 * as it is (src/config/schema.ts), so the two are never declared twice.
 */
interface ResolvedSetFields {
  id: string;
  /** Absolute source folder. */
  source: string;
  /**
   * Absolute folder that holds this set's backups; when `folder:` names a remote destination,
   * where that is (a URL, for messages: folderSpec says how to reach it).
   */
  folder: string;
  /** When `folder:` names a destination (local or remote): that destination. */
  folderSpec?: DestinationSpec;
  /** The destinations every backup is also copied to (`copies:`), in the config's order. */
  copies: DestinationSpec[];
  /**
   * The folder that must exist before `folder` may be created (its parent, or the server root
   * for a folder under it): a missing one is an unmounted disk (ensureBackupFolder). Default:
   * the parent of `folder`.
   */
  folderAnchor?: string;
  /** The config key that sets `folder` (for messages): server.backupFolder or sets.<id>.folder. */
  folderKey?: string;
  /** The full cadence (mode incremental): when the chain holds this many backups, the next is a full. */
  fullEvery: number;
  /** frequency every: the interval in seconds; slots are whole multiples of it since the epoch. */
  every: number | undefined;
  /** weekly: monday..sunday (default sunday); monthly: 1..31 or "last" (default 1); absent otherwise. */
  day: string | number | undefined;
  /** `server.hooks`, run around this set's hooks (docs/live-databases.md "Hooks"). */
  serverHooks?: RawConfig["server"]["hooks"];
  /** Its `notify:` over `server.notify` (resolveNotify); undefined: no webhook and no email. */
  notify?: NotifyConfig | undefined;
  /** `drill:` resolved (issue 14); absent when the set has none. */
  drill?: DrillConfig | undefined;
}

/**
 * A set's restore drill as the program uses it: the schema's keys with the scratch folder
 * absolute (relative to the server root, like `state`), `maxSize` in bytes, `every` in seconds and
 * the default `day` of its frequency (as a set's own schedule).
 */
export type DrillConfig = Omit<RawDrill, "scratch" | "maxSize" | "every" | "day"> & {
  scratch: string;
  maxSize: number;
  every: number | undefined;
  day: string | number | undefined;
};

/** The day a schedule uses: weekly default sunday, monthly default the 1st, none otherwise. */
function dayOf(frequency: string, day: string | number | undefined): string | number | undefined {
  if (frequency === "weekly") return day ?? "sunday";
  if (frequency === "monthly") return day === undefined ? 1 : day === "last" ? "last" : Number(day);
  return undefined;
}

/** A set as the program uses it: the schema's output (type, mode, keep, hooks…) plus ResolvedSetFields. */
export type SetConfig = Omit<RawSet, keyof ResolvedSetFields> & ResolvedSetFields;

export interface WebConfig {
  enabled: boolean;
  host: string;
  port: number;
  tls?: { cert: string; key: string };
}

/** `HOST:PORT` (brackets around an IPv6 host dropped) as host and port. */
export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(listen.slice(i + 1)) };
}

/** `server.log`, the file resolved from the config's folder and the size in bytes. */
export interface LogConfig {
  file?: string;
  level: "debug" | "info" | "warn" | "error";
  format: "json" | "plain";
  maxSize: number;
  keep: number;
}

export interface Config {
  /** Absolute path of the file the config was read from. */
  file: string;
  root: string;
  backupFolder: string;
  timezone: string;
  state: string;
  concurrency: RawConfig["server"]["concurrency"];
  sets: Map<string, SetConfig>;
  /** Every entry of `destinations:` (`--dest NAME` reaches any of them). */
  destinations: Map<string, DestinationSpec>;
  /** `server.web`: where the daemon serves the window and its API; TLS files resolved from the config's folder. */
  web: WebConfig;
  /** `server.metrics`: the bearer token for /metrics (still `secret:NAME`); absent: loopback only. */
  metrics: { token?: string };
  /** `server.log`: the daemon's log. */
  log: LogConfig;
  /** Advice that does not stop the load ("sets.x.keep: …"): loadConfig prints it. */
  warnings: string[];
  /** `server.notify`: the defaults, the disk threshold, the repeat window, the digest (docs/design.md "Notifications"). */
  notify?: ServerNotify | undefined;
}

/** `server.notify` resolved: the email's `ca` an absolute path, the repeat window in ms. */
export interface ServerNotify {
  webhook?: string | undefined;
  email?: EmailConfig | undefined;
  on?: NotifyConfig["on"];
  diskWarnPercent: number;
  repeatWindowMs: number;
  digest?: { day: string; time: string } | undefined;
}

/** `server.notify` with defaults, or the defaults alone when absent. */
function resolveServerNotify(raw: RawConfig["server"]["notify"], base: string): ServerNotify {
  const w = raw?.repeatWindow ?? "6h";
  const n = Number.parseInt(w, 10);
  return {
    ...(raw?.webhook === undefined ? {} : { webhook: raw.webhook }),
    ...(raw?.email === undefined ? {} : { email: withCa(raw.email, base) }),
    ...(raw?.on === undefined ? {} : { on: raw.on }),
    diskWarnPercent: raw?.diskWarnPercent ?? 90,
    repeatWindowMs: n * (w.endsWith("h") ? 3_600_000 : 60_000),
    ...(raw?.digest === undefined ? {} : { digest: raw.digest }),
  };
}

function withCa<T extends { ca?: string | undefined }>(e: T, base: string): T {
  return e.ca === undefined ? e : { ...e, ca: path.resolve(base, e.ca) };
}

/**
 * A set's notifications: its webhook or the server's, its email keys over the server's (the
 * schema checked the result is complete), its `on` or the server's. Undefined without a channel.
 */
function resolveNotify(s: RawSet["notify"], server: ServerNotify, base: string): NotifyConfig | undefined {
  const webhook = s?.webhook ?? server.webhook;
  const email =
    s?.email === undefined ? server.email : (withCa({ ...server.email, ...s.email }, base) as EmailConfig);
  const on = s?.on ?? server.on;
  if (webhook === undefined && email === undefined) return undefined;
  return {
    ...(webhook === undefined ? {} : { webhook }),
    ...(email === undefined ? {} : { email }),
    ...(on === undefined ? {} : { on }),
  };
}

export function findConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const candidate = explicit ?? env.BSCHED_CONFIG ?? "bsched.yaml";
  const file = path.resolve(candidate);
  if (!existsSync(file)) {
    const how = explicit ? "--config" : env.BSCHED_CONFIG ? "$BSCHED_CONFIG" : "the default ./bsched.yaml";
    throw new BschedError("CONFIG_NOT_FOUND", `config file not found: ${file} (from ${how})`, {
      hint: "create one with `bsched init --root DIR`, or pass --config FILE",
      exitCode: 2,
    });
  }
  return file;
}

/** Reads the config; its warnings go to `onWarning` (default: stderr as `bsched: warning: …`). */
export function loadConfig(
  explicit?: string,
  onWarning: (message: string) => void = (m) => process.stderr.write(`bsched: warning: ${m}\n`),
): Config {
  const file = findConfigFile(explicit);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new BschedError("CONFIG_INVALID", `cannot read config ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  // The same verdict as parseConfig's, read back when these bytes were checked before (cache.ts).
  const config = resolveConfig(
    cachedCheck(file, text, () => checkConfig(text, file)),
    file,
  );
  for (const w of config.warnings) onWarning(`${file}: ${w}`);
  return config;
}

export function parseConfig(text: string, file: string): Config {
  return resolveConfig(checkConfig(text, file), file);
}

/** The YAML parsed and checked against the schema: its output, or CONFIG_INVALID naming each key. */
export function checkConfig(text: string, file: string): CheckedConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw new BschedError("CONFIG_INVALID", `${file}: not valid YAML: ${yamlMessage((e as Error).message)}`, {
      hint: "fix the YAML syntax at the line shown",
    });
  }
  const result = schemas().configSchema.safeParse(doc ?? {});
  if (!result.success) {
    throw new BschedError(
      "CONFIG_INVALID",
      `${file}: invalid config:\n${describeIssues(result.error, doc)}`,
      {
        hint: "fix the keys named above; `bsched init` writes a valid example",
        fields: issueFields(result.error, doc),
      },
    );
  }
  return { raw: result.data, plainSecrets: plainSecretWarnings(result.data) };
}

function valueAt(doc: unknown, keyPath: readonly PropertyKey[]): unknown {
  let v: unknown = doc;
  for (const k of keyPath) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * yaml's message, whose excerpt of the text is dropped when it shows a secret field's line: an
 * error must not print a password (the line and column stay).
 */
function yamlMessage(message: string): string {
  const [first, ...excerpt] = message.split("\n");
  const secretLine = new RegExp(`\\b(${[...secretFields()].join("|")})\\s*:`);
  return excerpt.some((l) => secretLine.test(l))
    ? `${first} (the excerpt is not shown: it holds a secret's line)`
    : message;
}

/** A value as an error quotes it: a secret key's value never, secret fields inside it masked. */
function quoted(keyPath: readonly PropertyKey[], value: unknown): string {
  const at = keyPath.map(String);
  if (matchesKey(at) || secretFields().has(at[at.length - 1] ?? "")) return "a value (not shown: a secret)";
  return JSON.stringify(maskSecretFields(value));
}

/** What is wrong with one issue's key, as the CLI prints it after the key: `got "25:00"; allowed: …`. */
function issueText(issue: z.core.$ZodIssue, doc: unknown): string {
  if (issue.code === "unrecognized_keys") {
    return `unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(", ")} (check the spelling; see README "Config")`;
  }
  const value = valueAt(doc, issue.path);
  const got = value === undefined ? "missing" : `got ${quoted(issue.path, value)}`;
  let allowed = issue.message;
  if (issue.code === "invalid_value" && "values" in issue) {
    allowed = `one of ${(issue.values as unknown[]).map((x) => JSON.stringify(x)).join(", ")}`;
  }
  return `${got}; allowed: ${allowed}`;
}

function describeIssues(error: z.ZodError, doc: unknown): string {
  return error.issues
    .map((issue) => `  ${issue.path.map(String).join(".") || "(top level)"}: ${issueText(issue, doc)}`)
    .join("\n");
}

/**
 * The same issues as fields (the window shows each beside its field): the key's path in the
 * config and the text the CLI prints after it. An unknown key's path is its map's plus the key.
 */
export function issueFields(error: z.ZodError, doc: unknown): FieldError[] {
  return error.issues.flatMap((issue) => {
    const at = issue.path.map((k) => (typeof k === "number" ? k : String(k)));
    const message = issueText(issue, doc);
    if (issue.code === "unrecognized_keys") return issue.keys.map((k) => ({ path: [...at, k], message }));
    return [{ path: at, message }];
  });
}

/** True when `child` is `parent` or lies under it (paths already absolute and normalized). */
function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

function resolveConfig({ raw, plainSecrets }: CheckedConfig, file: string): Config {
  const base = path.dirname(file);
  const root = path.resolve(base, raw.server.root);
  const backupFolder = path.resolve(root, raw.server.backupFolder);
  const timezone = raw.server.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC";
  const state = raw.server.state ? path.resolve(root, raw.server.state) : path.join(root, ".bsched");
  const sets = new Map<string, SetConfig>();
  const warnings: string[] = [];
  const destinations = new Map<string, DestinationSpec>();
  warnings.push(...plainSecrets);
  const serverNotify = resolveServerNotify(raw.server.notify, base);
  for (const [name, d] of Object.entries(raw.destinations)) {
    destinations.set(name, {
      name,
      config: d,
      state,
      ...(raw.server.serviceLogin === undefined ? {} : { serviceLogin: raw.server.serviceLogin }),
    });
  }
  for (const [id, s] of Object.entries(raw.sets)) {
    const day = dayOf(s.frequency, s.day);
    const source = path.resolve(root, s.source);
    // The schema checked that a folder that is neither "default" nor a path names a destination.
    const folderSpec =
      s.folder === "default" || s.folder.startsWith("/") ? undefined : destinations.get(s.folder);
    const remote = folderSpec !== undefined && folderSpec.config.type !== "local";
    const folder =
      folderSpec === undefined
        ? s.folder === "default"
          ? backupFolder
          : path.resolve(s.folder)
        : folderSpec.config.type === "local"
          ? path.resolve(folderSpec.config.path)
          : whereOf(folderSpec.config);
    // Compared as real paths: a folder reached through a symlink into the source (folder:
    // /x/datalink/bk with datalink -> Data) is inside it all the same.
    const realSource = realExisting(source);
    const realFolder = realExisting(folder);
    const realState = realExisting(state);
    const via = (given: string, real: string) =>
      given === real ? "" : ` (really ${real}, through a symbolic link)`;
    if (!remote && isInside(realFolder, realSource)) {
      throw new BschedError(
        "CONFIG_INVALID",
        `${file}: sets.${id}: the backup folder ${folder}${via(folder, realFolder)} lies inside the source folder ${source}${via(source, realSource)}; each backup would copy the ones before it`,
        {
          hint:
            s.folder === "default"
              ? "set server.backupFolder, or this set's folder, to a folder outside the source"
              : `set sets.${id}.folder to a folder outside ${realSource}`,
          fields: [
            {
              path: s.folder === "default" ? ["server", "backupFolder"] : ["sets", id, "folder"],
              message: `a folder outside the source folder ${source} (each backup would copy the ones before it)`,
            },
          ],
        },
      );
    }
    if (isInside(realState, realSource)) {
      // The catalog changes while the set is read: every backup would hold a torn copy of it.
      throw new BschedError(
        "CONFIG_INVALID",
        `${file}: sets.${id}: the state folder ${state}${via(state, realState)} (catalog, daemon lock) lies inside the source folder ${source}${via(source, realSource)}`,
        {
          hint: "set server.state to a folder outside every set's source (relative to root, or absolute)",
          fields: [
            {
              path: ["sets", id, "source"],
              message: `a folder that does not hold the state folder ${state}`,
            },
          ],
        },
      );
    }
    sets.set(id, {
      id,
      letter: s.letter,
      source,
      automatic: s.automatic,
      folder,
      ...(folderSpec === undefined ? {} : { folderSpec }),
      copies: s.copies.map((name) => destinations.get(name) as DestinationSpec),
      folderAnchor: isInside(folder, root) ? root : path.dirname(folder),
      folderKey:
        s.folder === "default"
          ? "server.backupFolder"
          : folderSpec?.config.type === "local"
            ? `destinations.${s.folder}.path`
            : `sets.${id}.folder`,
      type: s.type,
      mode: s.mode,
      fullEvery: s.fullEvery ?? DEFAULT_FULL_EVERY,
      frequency: s.frequency,
      every: s.every === undefined ? undefined : everySeconds(s.every),
      day,
      time: s.time,
      compression: s.compression,
      catchUp: s.catchUp,
      keep: s.keep,
      hooks: s.hooks,
      notify: resolveNotify(s.notify, serverNotify, base),
      serverHooks: raw.server.hooks,
      ...(s.drill === undefined ? {} : { drill: resolveDrill(s.drill, root, id, source, file) }),
    });
    warnings.push(...setWarnings(id, sets.get(id) as SetConfig, s.fullEvery !== undefined));
  }
  return {
    file,
    root,
    backupFolder,
    timezone,
    state,
    concurrency: raw.server.concurrency,
    sets,
    destinations,
    notify: serverNotify,
    web: {
      enabled: raw.server.web.enabled,
      ...parseListen(raw.server.web.listen),
      ...(raw.server.web.tls === undefined
        ? {}
        : {
            tls: {
              cert: path.resolve(base, raw.server.web.tls.cert),
              key: path.resolve(base, raw.server.web.tls.key),
            },
          }),
    },
    metrics: raw.server.metrics?.token === undefined ? {} : { token: raw.server.metrics.token },
    log: {
      ...(raw.server.log.file === undefined ? {} : { file: path.resolve(base, raw.server.log.file) }),
      level: raw.server.log.level,
      format: raw.server.log.format,
      maxSize: sizeBytes(raw.server.log.maxSize),
      keep: raw.server.log.keep,
    },
    warnings,
  };
}

/** A set's `drill:` resolved; a scratch folder inside the source is refused (the next backup would copy it). */
function resolveDrill(d: RawDrill, root: string, id: string, source: string, file: string): DrillConfig {
  const scratch = path.resolve(root, d.scratch);
  const realScratch = realExisting(scratch);
  const realSource = realExisting(source);
  if (isInside(realScratch, realSource)) {
    throw new BschedError(
      "CONFIG_INVALID",
      `${file}: sets.${id}.drill.scratch: the scratch folder ${scratch} lies inside the source folder ${source}; the next backup would copy each drill's restore`,
      {
        hint: `set sets.${id}.drill.scratch to a folder outside ${realSource} (default /var/tmp/bsched-drill)`,
        fields: [
          { path: ["sets", id, "drill", "scratch"], message: `a folder outside the source folder ${source}` },
        ],
      },
    );
  }
  return {
    ...d,
    scratch,
    maxSize: sizeBytes(d.maxSize),
    every: d.every === undefined ? undefined : everySeconds(d.every),
    day: dayOf(d.frequency, d.day),
  };
}

/** The set's drill, or the defaults of `drill:` for a set that has none (`bsched drill SET` still works). */
export function drillConfigOf(config: Config, set: SetConfig): DrillConfig {
  return (
    set.drill ?? resolveDrill(schemas().drillSchema.parse({}), config.root, set.id, set.source, config.file)
  );
}

export function getSet(config: Config, id: string): SetConfig {
  const set = config.sets.get(id);
  if (!set) {
    const known = [...config.sets.keys()].join(", ") || "(none)";
    throw new BschedError("SET_UNKNOWN", `unknown set "${id}" in ${config.file}`, {
      hint: `known sets: ${known}`,
    });
  }
  return set;
}
