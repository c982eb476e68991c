import type { Catalog, CopyRecord } from "../catalog/catalog.ts";
import { whereOf } from "../config/destinations.ts";
import type { Config, DestinationSpec, SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import { byAge, type FoundBackup, listBackups } from "../destination/backups.ts";
import { closeQuietly, requirePresent } from "../destination/by-name.ts";
import type { Destination } from "../destination/destination.ts";
import { openDestination } from "../destination/open.ts";

/** How long `status` waits for one destination before showing it unreachable. */
export const COPY_STATUS_TIMEOUT_MS = 10_000;

/** One copy destination of a set, as `status` shows it (issue 11, "What to build" 7). */
export interface CopyStatus {
  /** Its name under `destinations:`. */
  destination: string;
  /** Where it is (a path or a URL, never a credential). */
  where: string;
  /** Where `newest` comes from: a listing of the destination, or the catalog (`--offline`, or it could not be listed). */
  seen: "destination" | "catalog";
  /** The newest complete backup of the set there (null: none, or unknown). */
  newest: string | null;
  /** Complete backups there (null: not listed). */
  count: number | null;
  /** How many of the set's own backups are newer than `newest` (null: unknown). */
  behind: number | null;
  /** How the last copy there ended, from the catalog (null: never copied). */
  lastCopy: {
    at: string;
    ok: boolean;
    copied: number;
    code?: string;
    message?: string;
    hint?: string;
  } | null;
  /** Why it could not be listed: unreachable (no answer in time), a wrong password, a disk not mounted… */
  error?: string;
  errorCode?: string;
  errorHint?: string;
}

export interface CopyStatusOptions {
  /** Show only what the catalog knows: no destination is contacted. */
  offline?: boolean | undefined;
  /** Per destination (default COPY_STATUS_TIMEOUT_MS). */
  timeoutMs?: number | undefined;
  /** How a destination is made (default openDestination): a test's wrapper. */
  open?: ((spec: DestinationSpec) => Destination) | undefined;
}

/** A destination's listing of one set: its complete backups, oldest first, or why there is none. */
type Probe = { backups: FoundBackup[] } | { error: BschedError };

/**
 * The listings of every set's copies, all started at once, each destination opened once (shared
 * by the sets copied there) and given `timeoutMs` to answer: a destination that is down costs one
 * timeout however many sets use it, and never fails the whole status. Call `close` when done.
 */
export function probeCopies(
  config: Config,
  opts: CopyStatusOptions = {},
): { of(set: SetConfig, spec: DestinationSpec): Promise<Probe> | undefined; close(): Promise<void> } {
  const probes = new Map<string, Promise<Probe>>();
  // Each destination, or why it could not even be made (a config it refuses): shown on its line.
  const opened = new Map<string, Destination | { failed: unknown }>();
  if (!opts.offline) {
    const ms = opts.timeoutMs ?? COPY_STATUS_TIMEOUT_MS;
    for (const set of config.sets.values()) {
      for (const spec of set.copies) {
        let dest = opened.get(spec.name);
        if (dest === undefined) {
          try {
            dest = (opts.open ?? openDestination)(spec);
          } catch (e) {
            dest = { failed: e };
          }
          opened.set(spec.name, dest);
        }
        const where = whereOf(spec.config);
        probes.set(
          `${set.id}\0${spec.name}`,
          "failed" in dest
            ? Promise.resolve({ error: asUnreachable(dest.failed, spec.name, where, set.id) })
            : probe(dest, spec, set, config.file, ms),
        );
      }
    }
  }
  return {
    of: (set, spec) => probes.get(`${set.id}\0${spec.name}`),
    async close() {
      await Promise.all([...opened.values()].map((d) => ("failed" in d ? undefined : closeQuietly(d))));
    },
  };
}

async function probe(
  dest: Destination,
  spec: DestinationSpec,
  set: SetConfig,
  configFile: string,
  ms: number,
): Promise<Probe> {
  try {
    const listing = (async () => {
      await requirePresent(spec, configFile);
      return (await listBackups(dest, set.letter, set.id)).backups;
    })();
    return { backups: await answerWithin(listing, ms, spec.name, whereOf(spec.config), set.id) };
  } catch (e) {
    return { error: asUnreachable(e, spec.name, whereOf(spec.config), set.id) };
  }
}

/**
 * `work` on destination `name`, or UNREACHABLE once `ms` have passed without its answer. The work
 * may still settle later: its outcome is then no longer wanted (the caller closes the destination).
 */
export async function answerWithin<T>(
  work: Promise<T>,
  ms: number,
  name: string,
  where: string,
  setId: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new BschedError("UNREACHABLE", `destination ${name} (${where}) did not answer in ${ms / 1000} s`, {
          hint: `is it up and reachable from here? \`bsched status --timeout 60\` waits longer; \`bsched list ${setId} --dest ${name}\` waits for its answer`,
        }),
      );
    }, ms);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why a destination could not be listed, as a worded error (an implementation's own, or UNREACHABLE). */
export function asUnreachable(e: unknown, name: string, where: string, setId: string): BschedError {
  if (e instanceof BschedError) return e;
  return new BschedError("UNREACHABLE", `destination ${name} (${where}): ${(e as Error).message}`, {
    hint: `check that it is up and reachable from here; \`bsched list ${setId} --dest ${name}\` shows the whole error`,
  });
}

/** The status of each of the set's copies, from its probes, the set's own backups and the catalog. */
export async function copyStatuses(
  set: SetConfig,
  /** The set's own backups, oldest first; undefined when its folder could not be listed. */
  own: FoundBackup[] | undefined,
  catalog: Catalog,
  probes: ReturnType<typeof probeCopies>,
): Promise<CopyStatus[]> {
  const records = new Map(catalog.copies(set.id).map((c) => [c.destination, c]));
  return Promise.all(
    set.copies.map(async (spec) => {
      const record = records.get(spec.name);
      const p = await probes.of(set, spec);
      const base = { destination: spec.name, where: whereOf(spec.config), lastCopy: lastCopyOf(record) };
      if (p !== undefined && "backups" in p) {
        const newest = p.backups.at(-1);
        return {
          ...base,
          seen: "destination" as const,
          newest: newest?.name ?? null,
          count: p.backups.length,
          behind:
            own === undefined
              ? null
              : newest === undefined
                ? own.length
                : own.filter((b) => byAge(newest, b) < 0).length,
        };
      }
      // Offline, or not listed: what the catalog saw after the last copy.
      const newest = record?.newest ?? null;
      const at = newest === null || own === undefined ? -1 : own.findIndex((b) => b.name === newest);
      return {
        ...base,
        seen: "catalog" as const,
        newest,
        count: null,
        behind:
          own === undefined || (newest === null && record === undefined)
            ? null
            : newest === null
              ? own.length
              : at >= 0
                ? own.length - at - 1
                : own.filter((b) => b.name > newest).length,
        ...(p === undefined
          ? {}
          : {
              error: p.error.message,
              errorCode: p.error.code,
              ...(p.error.hint === undefined ? {} : { errorHint: p.error.hint }),
            }),
      };
    }),
  );
}

function lastCopyOf(r: CopyRecord | undefined): CopyStatus["lastCopy"] {
  if (r === undefined) return null;
  return {
    at: r.at,
    ok: r.ok,
    copied: r.copied,
    ...(r.errorCode === null ? {} : { code: r.errorCode }),
    ...(r.error === null ? {} : { message: r.error }),
    ...(r.errorHint === null ? {} : { hint: r.errorHint }),
  };
}
