import { isDeepStrictEqual } from "node:util";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { applyChanges, type ConfigChange } from "../config/edit.ts";
import { getSet, parseConfig } from "../config/load.ts";
import { type DestinationConfig, type RawConfig, type RawSet, schemas } from "../config/schema.ts";
import { matchesKey, secretFields } from "../config/secret-keys.ts";
import { BschedError, type FieldError } from "../core/errors.ts";
import type { BackupMode } from "../core/types.ts";
import { openDestination } from "../destination/open.ts";
import type { Clock } from "../platform/clock.ts";
import { isSecretReference, SECRET_PREFIX } from "../secrets/names.ts";
import { readStore } from "../secrets/store.ts";
import { isBackupName } from "../snapshot/naming.ts";
import { type ConfigChangeResult, type ConfigRead, changeConfig, readConfig } from "./config.ts";
import { next } from "./next.ts";
import { secretReferences, setSecret } from "./secrets.ts";

/**
 * The settings window's use cases (docs/design.md "Settings and system parameters"): what the
 * window shows of the config (secrets masked: no value, plain or resolved, ever leaves), and the
 * changes it makes. A change names the whole set (or destination, or the system parameters) as
 * the window holds it; only what differs from the file's meaning is written, through
 * changeConfig (comments and order kept, the config's schema and checks before anything is
 * written, the hash the window read checked). Passwords go to the secret store, the config
 * referencing them as `secret:NAME`.
 */

/** A secret as the window sees it: the name it is stored under (null: a plain value in the file) and whether it is set. */
export interface SecretMask {
  secret: string | null;
  set: boolean;
}

export type SetSettings = Record<string, unknown>;

export interface SettingsView {
  hash: string;
  file: string;
  sets: Record<string, RawSet>;
  system: {
    serviceLogin: { domain: string | null; user: string; passwordSet: boolean } | null;
    timezone: string | null;
    timezoneInEffect: string;
    concurrency: number;
    /** Each entry as in the config, every secret replaced by its SecretMask. */
    destinations: Record<string, { type: DestinationConfig["type"] } & Record<string, unknown>>;
  };
}

/** The file as the schema gives it (defaults filled, secrets as written) and as plain YAML data (what is really there). */
function rawOf(read: ConfigRead): { raw: RawConfig; doc: Record<string, unknown> } {
  const doc = (parseYaml(read.text) ?? {}) as Record<string, unknown>;
  // readConfig parsed this very text: it passes.
  return { raw: schemas().configSchema.parse(doc), doc };
}

/** The names in the secret store; none when it cannot be read (a view must still show the rest). */
function storedNames(state: string): Set<string> {
  try {
    return new Set(readStore(state).secrets.keys());
  } catch {
    return new Set();
  }
}

function mask(value: unknown, stored: Set<string>): SecretMask {
  if (isSecretReference(value)) {
    const name = value.slice(SECRET_PREFIX.length);
    return { secret: name, set: stored.has(name) };
  }
  return { secret: null, set: true };
}

/** A set as the window edits it: the schema's output, `day` the one in effect, absent keys left out. */
function setView(raw: RawSet, day: string | number | undefined): RawSet {
  const view: SetSettings = {};
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) view[k] = v;
  if (day === undefined) delete view.day;
  else view.day = day;
  return view as RawSet;
}

/** A set's `notify.email.password` (the SMTP login's, issue 14) as its SecretMask: never sent to the window. */
function maskSetEmail(view: RawSet, stored: Set<string>): RawSet {
  const email = view.notify?.email;
  if (email?.password === undefined) return view;
  const masked = { ...email, password: mask(email.password, stored) };
  return { ...view, notify: { ...view.notify, email: masked } } as unknown as RawSet;
}

/** The mask of a set's `notify.email.password` sent back as received: the value the file has. */
function unmaskSetEmail(settings: SetSettings, current: RawSet | undefined): SetSettings {
  const notify = settings.notify;
  if (!isMap(notify) || !isMap(notify.email) || !isMap(notify.email.password)) return settings;
  return {
    ...settings,
    notify: { ...notify, email: { ...notify.email, password: current?.notify?.email?.password } },
  };
}

/** A destination's entry with every secret-valued key (found by the config's schema) replaced by its mask. */
function maskDestination(
  name: string,
  entry: DestinationConfig,
  stored: Set<string>,
): { type: DestinationConfig["type"] } & Record<string, unknown> {
  const walk = (v: unknown, at: string[]): unknown => {
    if (matchesKey(at)) return mask(v, stored);
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => [k, walk(x, [...at, k])]),
    );
  };
  return walk(entry, ["destinations", name]) as { type: DestinationConfig["type"] } & Record<string, unknown>;
}

/** True when no field named as a secret holds a string anywhere in `v`: the view's last guard. */
export function holdsNoSecret(v: unknown): boolean {
  if (v === null || typeof v !== "object") return true;
  return Object.entries(v).every(([k, x]) =>
    secretFields().has(k) && typeof x === "string" ? false : holdsNoSecret(x),
  );
}

/** `GET /api/settings`: the file's hash, every set's settings, the system parameters, secrets masked. */
export function settingsView(read: ConfigRead): SettingsView {
  const { raw } = rawOf(read);
  const c = read.config;
  const stored = storedNames(c.state);
  const login = raw.server.serviceLogin;
  return {
    hash: read.hash,
    file: read.file,
    sets: Object.fromEntries(
      Object.entries(raw.sets).map(([id, s]) => [id, maskSetEmail(setView(s, c.sets.get(id)?.day), stored)]),
    ),
    system: {
      serviceLogin:
        login === undefined
          ? null
          : { domain: login.domain ?? null, user: login.user, passwordSet: mask(login.password, stored).set },
      timezone: raw.server.timezone ?? null,
      timezoneInEffect: c.timezone,
      concurrency: raw.server.concurrency,
      destinations: Object.fromEntries(
        Object.entries(raw.destinations).map(([name, d]) => [name, maskDestination(name, d, stored)]),
      ),
    },
  };
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** A value without its null and undefined keys (the window sends null for "none"). */
function clean(v: unknown): unknown {
  if (!isMap(v)) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([, x]) => x !== null && x !== undefined)
      .map(([k, x]) => [k, clean(x)]),
  );
}

/**
 * The changes that make the map at `at` say `wanted`: a key whose value already is in effect
 * (written, or its default) is not touched; a map present on both sides is compared key by key
 * (a block map keeps its layout); a key left out or null is removed from the file when there.
 */
export function changesFor(
  at: readonly string[],
  inEffect: Record<string, unknown>,
  inFile: Record<string, unknown>,
  wanted: Record<string, unknown>,
): ConfigChange[] {
  const out: ConfigChange[] = [];
  for (const [k, v] of Object.entries(wanted)) {
    if (v === null || v === undefined) continue;
    const now = inEffect[k];
    if (isDeepStrictEqual(clean(v), now)) continue;
    const there = inFile[k];
    if (isMap(v) && isMap(there) && isMap(now)) out.push(...changesFor([...at, k], now, there, v));
    else out.push({ key: [...at, k], value: clean(v) });
  }
  for (const k of Object.keys(inFile)) {
    if (wanted[k] === null || wanted[k] === undefined) out.push({ key: [...at, k], unset: true });
  }
  return out;
}

function setChanges(read: ConfigRead, id: string, settings: SetSettings): ConfigChange[] {
  const { raw, doc } = rawOf(read);
  const inFile = (doc.sets as Record<string, unknown> | undefined)?.[id];
  const current = raw.sets[id];
  const wanted = unmaskSetEmail(settings, current);
  if (current === undefined || !isMap(inFile)) return [{ key: ["sets", id], value: clean(wanted) }];
  return changesFor(["sets", id], setView(current, read.config.sets.get(id)?.day), inFile, wanted);
}

/** A changed file, worded for the window: nothing was written, reload to see the other edit. */
function changedForWindow(e: unknown): unknown {
  if (!(e instanceof BschedError && e.code === "CONFIG_CHANGED")) return e;
  return new BschedError("CONFIG_CHANGED", e.message, {
    hint: "someone changed bsched.yaml since these settings were read: reload them to see what it holds now, then make the change again",
    exitCode: e.exitCode,
    cause: e,
  });
}

function checkHash(read: ConfigRead, hash: string): void {
  if (read.hash !== hash) {
    throw changedForWindow(
      new BschedError(
        "CONFIG_CHANGED",
        `the config ${read.file} changed since it was read; nothing was written`,
      ),
    );
  }
}

/** The config `changes` would give, checked as loading it checks it (CONFIG_INVALID with fields), never written. */
function dryRun(read: ConfigRead, changes: readonly ConfigChange[]) {
  try {
    return parseConfig(applyChanges(read.text, changes), read.file);
  } catch (e) {
    if (!(e instanceof BschedError)) throw e;
    throw new BschedError(e.code, e.message, {
      hint: `nothing was written: ${read.file} is as it was; give each field a value its message allows`,
      exitCode: e.exitCode,
      cause: e,
      ...(e.fields === undefined ? {} : { fields: e.fields }),
    });
  }
}

/** Changes made through the window, one at a time: the hash each checks is never raced by another. */
let tail: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(body: () => Promise<T>): Promise<T> {
  const run = tail.then(body, body);
  tail = run.catch(() => undefined);
  return run;
}

export interface SettingsSaved {
  hash: string;
  changed: boolean;
  warnings: string[];
}

function saved(r: ConfigChangeResult | ConfigRead, changed: boolean): SettingsSaved {
  return { hash: r.hash, changed, warnings: r.config.warnings };
}

async function write(
  read: ConfigRead,
  hash: string,
  changes: readonly ConfigChange[],
  before?: () => Promise<void>,
): Promise<SettingsSaved> {
  if (changes.length === 0 && before === undefined) return saved(read, false);
  // Checked first: a refused change stores no secret either.
  dryRun(read, changes);
  if (before !== undefined) {
    // Read again before a secret is stored: a change refused for an edit made meanwhile stores nothing.
    checkHash(readConfig(read.file), hash);
    await before();
  }
  if (changes.length === 0) return saved(read, true);
  try {
    const r = await changeConfig({ file: read.file, changes, expectedHash: hash });
    return saved(r, r.changed || before !== undefined);
  } catch (e) {
    throw changedForWindow(e);
  }
}

/** `PUT /api/settings/sets/:set`: the whole set as the window holds it (a new id adds a set). */
export function saveSet(opts: {
  file: string;
  hash: string;
  set: string;
  settings: SetSettings;
}): Promise<SettingsSaved> {
  return oneAtATime(async () => {
    const read = readConfig(opts.file);
    checkHash(read, opts.hash);
    return write(read, opts.hash, setChanges(read, opts.set, opts.settings));
  });
}

/**
 * `PUT /api/settings/sets`: every tab the window's OK holds changed, as one edit of the file —
 * all are written or none (a bad field in one tab leaves the others unwritten too, with every
 * bad field of every tab reported at once).
 */
export function saveSets(opts: {
  file: string;
  hash: string;
  sets: Record<string, SetSettings>;
}): Promise<SettingsSaved> {
  return oneAtATime(async () => {
    const read = readConfig(opts.file);
    checkHash(read, opts.hash);
    const changes = Object.entries(opts.sets).flatMap(([id, settings]) => setChanges(read, id, settings));
    return write(read, opts.hash, changes);
  });
}

export interface NextForSettings {
  timezone: string;
  chain: number;
  runs: { at: Date; mode: BackupMode }[];
}

/**
 * `POST /api/settings/next`: the next `count` runs the set would have with these unsaved settings:
 * the config they would make (checked like a save, nothing written), then `bsched next`'s code.
 */
export async function nextForSettings(opts: {
  file: string;
  clock: Clock;
  set: string;
  settings: SetSettings;
  from?: Date | undefined;
  count: number;
}): Promise<NextForSettings> {
  const read = readConfig(opts.file);
  const config = dryRun(read, setChanges(read, opts.set, opts.settings));
  const [planned] = await next(
    { config, clock: opts.clock },
    { set: getSet(config, opts.set), from: opts.from, count: opts.count },
  );
  return { timezone: config.timezone, chain: planned?.chain ?? 0, runs: planned?.runs ?? [] };
}

/**
 * The name a new secret value for `key` is stored under: the one the config already references
 * there, else `base` (with `-2`, `-3`… when another key references that name).
 */
function secretNameFor(read: ConfigRead, key: string, current: unknown, base: string): string {
  if (isSecretReference(current)) return current.slice(SECRET_PREFIX.length);
  const taken = new Set(
    secretReferences(read.config)
      .filter((r) => r.key !== key)
      .map((r) => r.name),
  );
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
  return name;
}

export interface ServiceLoginInput {
  domain?: string | null | undefined;
  user: string;
  /** A new password; absent or empty: the stored one stays. */
  password?: string | undefined;
}

/** `PUT /api/settings/system`: the service login (its password to the secret store), time zone, concurrency. */
export function saveSystem(opts: {
  file: string;
  hash: string;
  clock: Clock;
  serviceLogin?: ServiceLoginInput | null | undefined;
  timezone?: string | null | undefined;
  concurrency?: number | undefined;
}): Promise<SettingsSaved> {
  return oneAtATime(async () => {
    const read = readConfig(opts.file);
    checkHash(read, opts.hash);
    const { raw, doc } = rawOf(read);
    const server = (isMap(doc.server) ? doc.server : {}) as Record<string, unknown>;
    const changes: ConfigChange[] = [];
    let secret: { name: string; value: string } | undefined;
    const login = opts.serviceLogin;
    if (login === null) {
      if (server.serviceLogin !== undefined) changes.push({ key: ["server", "serviceLogin"], unset: true });
    } else if (login !== undefined) {
      const current = raw.server.serviceLogin;
      let password = current?.password;
      if (login.password !== undefined && login.password !== "") {
        const name = secretNameFor(read, "server.serviceLogin.password", password, "service-login");
        secret = { name, value: login.password };
        password = `${SECRET_PREFIX}${name}`;
      }
      if (password === undefined) {
        throw new BschedError("USAGE", "the service login needs a password: nothing was written", {
          hint: "type the service login's password (and its confirmation)",
          fields: [
            { path: ["server", "serviceLogin", "password"], message: "a password (none is stored yet)" },
          ],
        });
      }
      const wanted = { domain: login.domain || null, user: login.user, password };
      if (current === undefined || !isMap(server.serviceLogin))
        changes.push({ key: ["server", "serviceLogin"], value: clean(wanted) });
      else changes.push(...changesFor(["server", "serviceLogin"], current, server.serviceLogin, wanted));
    }
    if (opts.timezone === null) {
      if (server.timezone !== undefined) changes.push({ key: ["server", "timezone"], unset: true });
    } else if (opts.timezone !== undefined && opts.timezone !== raw.server.timezone) {
      changes.push({ key: ["server", "timezone"], value: opts.timezone });
    }
    if (opts.concurrency !== undefined && opts.concurrency !== raw.server.concurrency)
      changes.push({ key: ["server", "concurrency"], value: opts.concurrency });
    const s = secret;
    return write(
      read,
      opts.hash,
      changes,
      s === undefined
        ? undefined
        : async () => {
            await setSecret({ state: read.config.state, name: s.name, value: s.value, clock: opts.clock });
          },
    );
  });
}

/**
 * A destination entry from the window as the config will hold it: a mask object is the value
 * the file has (unchanged), a `secret:NAME` stays, a plain value becomes `secret:NAME` and is
 * returned in `secrets` to be stored.
 */
function destinationFromWindow(
  read: ConfigRead,
  name: string,
  entry: Record<string, unknown>,
  store = true,
): { entry: Record<string, unknown>; secrets: { name: string; value: string }[] } {
  const { raw } = rawOf(read);
  const current = raw.destinations[name] as Record<string, unknown> | undefined;
  const secrets: { name: string; value: string }[] = [];
  const valueAt = (at: string[]) => at.reduce<unknown>((v, k) => (isMap(v) ? v[k] : undefined), current);
  const walk = (v: unknown, at: string[]): unknown => {
    if (matchesKey(["destinations", name, ...at])) {
      if (isMap(v)) return valueAt(at); // the mask: unchanged
      // For a test, a plain value is used as it is (resolveSecret gives it back): nothing stored.
      if (!store || typeof v !== "string" || v === "" || isSecretReference(v)) return v;
      const field = at[at.length - 1] as string;
      const base = field === "passphrase" ? `${name}-passphrase` : name;
      const secretName = secretNameFor(read, ["destinations", name, ...at].join("."), valueAt(at), base);
      secrets.push({ name: secretName, value: v });
      return `${SECRET_PREFIX}${secretName}`;
    }
    if (!isMap(v)) return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...at, k])]));
  };
  return { entry: walk(entry, []) as Record<string, unknown>, secrets };
}

/** `PUT /api/settings/destinations/:name`: add or change a destination, its new secrets to the store. */
export function saveDestination(opts: {
  file: string;
  hash: string;
  clock: Clock;
  name: string;
  destination: Record<string, unknown>;
}): Promise<SettingsSaved> {
  return oneAtATime(async () => {
    const read = readConfig(opts.file);
    checkHash(read, opts.hash);
    const { raw, doc } = rawOf(read);
    const { entry, secrets } = destinationFromWindow(read, opts.name, opts.destination);
    const inFile = isMap(doc.destinations) ? doc.destinations[opts.name] : undefined;
    const current = raw.destinations[opts.name] as Record<string, unknown> | undefined;
    const changes =
      current === undefined || !isMap(inFile)
        ? [{ key: ["destinations", opts.name], value: clean(entry) }]
        : changesFor(["destinations", opts.name], current, inFile, entry);
    return write(
      read,
      opts.hash,
      changes,
      secrets.length === 0
        ? undefined
        : async () => {
            for (const s of secrets)
              await setSecret({ state: read.config.state, name: s.name, value: s.value, clock: opts.clock });
          },
    );
  });
}

/**
 * `DELETE /api/settings/destinations/:name`: refused while a set keeps its backups there or
 * copies to it (naming the set and the key). Its stored secrets stay (`bsched secret remove`).
 */
export function removeDestination(opts: {
  file: string;
  hash: string;
  name: string;
}): Promise<SettingsSaved> {
  return oneAtATime(async () => {
    const read = readConfig(opts.file);
    checkHash(read, opts.hash);
    const { raw } = rawOf(read);
    if (raw.destinations[opts.name] === undefined) throw unknownDestination(read, opts.name);
    const fields: FieldError[] = [];
    for (const [id, s] of Object.entries(raw.sets)) {
      if (s.folder === opts.name)
        fields.push({ path: ["sets", id, "folder"], message: `keeps its backups on ${opts.name}` });
      s.copies.forEach((c, i) => {
        if (c === opts.name)
          fields.push({ path: ["sets", id, "copies", i], message: `copies every backup to ${opts.name}` });
      });
    }
    if (fields.length > 0) {
      const users = fields.map((f) => `sets.${f.path[1]}.${f.path[2]}`).join(", ");
      const sets = [...new Set(fields.map((f) => String(f.path[1])))];
      throw new BschedError(
        "USAGE",
        `destination ${opts.name} is used by set ${sets.join(", set ")} (${users}); nothing was written`,
        {
          hint: `give set ${sets[0]} another folder or take ${opts.name} out of its copies first, then remove ${opts.name}`,
          fields,
        },
      );
    }
    return write(read, opts.hash, [{ key: ["destinations", opts.name], unset: true }]);
  });
}

function unknownDestination(read: ConfigRead, name: string): BschedError {
  const known = [...read.config.destinations.keys()];
  return new BschedError("NOT_FOUND", `no destination ${JSON.stringify(name)} in ${read.file}`, {
    hint: known.length === 0 ? "no destination is defined yet" : `defined: ${known.join(", ")}`,
  });
}

export type DestinationTest =
  | { ok: true; where: string; backups: number }
  | { ok: false; where: string; error: { code: string; message: string; hint: string | null } };

/** How long a test connection may take: a host that drops packets answers nothing. */
export const TEST_TIMEOUT_MS = 15_000;

/**
 * `POST /api/destinations/test`: open the destination (the saved entry `name`, or an unsaved
 * `destination`, its plain secrets used for this test only), check it can be written (ready) and
 * list it, then close it. A failure is the destination's own error (AUTH_FAILED, UNREACHABLE,
 * HOST_KEY_MISMATCH…); no answer within `timeoutMs` is UNREACHABLE. A bad entry is CONFIG_INVALID.
 */
export async function testDestination(opts: {
  file: string;
  name?: string | undefined;
  destination?: Record<string, unknown> | undefined;
  timeoutMs?: number | undefined;
}): Promise<DestinationTest> {
  const read = readConfig(opts.file);
  const name = opts.name ?? "new";
  let config = read.config;
  if (opts.destination !== undefined) {
    const { entry } = destinationFromWindow(read, name, opts.destination, false);
    const doc = (parseYaml(read.text) ?? {}) as Record<string, unknown>;
    doc.destinations = { ...(isMap(doc.destinations) ? doc.destinations : {}), [name]: clean(entry) };
    try {
      config = parseConfig(toYaml(doc), read.file);
    } catch (e) {
      if (!(e instanceof BschedError)) throw e;
      throw new BschedError(e.code, e.message, {
        hint: "give each field a value its message allows, then test again",
        ...(e.fields === undefined ? {} : { fields: e.fields }),
      });
    }
  }
  const spec = config.destinations.get(name);
  if (spec === undefined) throw unknownDestination(read, name);
  const timeoutMs = opts.timeoutMs ?? TEST_TIMEOUT_MS;
  const d = openDestination(spec);
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = (async () => {
      await d.ready();
      return (await d.names()).filter((n) => isBackupName(n)).length;
    })();
    const late = new Promise<"late">((r) => {
      timer = setTimeout(() => r("late"), timeoutMs);
    });
    const r = await Promise.race([answer, late]);
    answer.catch(() => undefined);
    if (r === "late") {
      return {
        ok: false,
        where: d.where,
        error: {
          code: "UNREACHABLE",
          message: `destination ${name} (${d.where}) did not answer within ${Math.round(timeoutMs / 1000)} s`,
          hint: "check the host, the port and that the server runs; a firewall that drops packets looks like this",
        },
      };
    }
    return { ok: true, where: d.where, backups: r };
  } catch (e) {
    const err =
      e instanceof BschedError
        ? { code: e.code, message: e.message, hint: e.hint ?? null }
        : { code: "IO", message: `destination ${name} (${d.where}): ${(e as Error).message}`, hint: null };
    return { ok: false, where: d.where, error: err };
  } finally {
    clearTimeout(timer);
    // A hung connection must not hold the answer: close is given a moment, not waited for.
    await Promise.race([d.close?.(), new Promise((r) => setTimeout(r, 2000).unref())]).catch(() => undefined);
  }
}
