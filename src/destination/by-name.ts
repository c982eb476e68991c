import fs from "node:fs/promises";
import type { Config, DestinationSpec, SetConfig } from "../config/load.ts";
import { BschedError, errnoCode } from "../core/errors.ts";
import type { Destination } from "./destination.ts";
import { openDestination } from "./open.ts";

/** What `--dest folder` means: the set's own backup folder (`folder:` in its config). */
export const OWN_FOLDER_NAME = "folder";

/** Every name `--dest` accepts: `folder`, then each entry of `destinations:` in the config's order. */
export function destinationNames(config: Config): string[] {
  return [OWN_FOLDER_NAME, ...config.destinations.keys()];
}

/**
 * The entry of `destinations:` that `--dest NAME` names, or undefined for `folder` (the set's
 * own). Any entry, not only the set's copies: a disk brought from elsewhere may be named just to
 * restore from it. An unknown name is a usage error listing the known ones.
 */
export function destinationSpecNamed(config: Config, name: string): DestinationSpec | undefined {
  if (name === OWN_FOLDER_NAME) return undefined;
  const spec = config.destinations.get(name);
  if (spec === undefined) {
    throw new BschedError("USAGE", `unknown destination "${name}" for --dest in ${config.file}`, {
      hint: `known: ${destinationNames(config).join(", ")} (\`folder\` is the set's own backup folder; the others are under destinations:)`,
    });
  }
  return spec;
}

/**
 * The Destination `--dest NAME` means (for `set`, when one is given), checked to be there when it
 * is a mounted disk: a local destination whose folder does not exist is an unmounted disk, said
 * so, rather than listed as holding no backups. Undefined for `folder` (and no NAME): each set's
 * own, which the operations open themselves (destinationOf). Nothing remote connects here
 * (openDestination). The caller closes what it got (closeQuietly).
 */
export async function openNamedDestination(
  config: Config,
  name: string | undefined,
  set?: SetConfig,
): Promise<Destination | undefined> {
  const spec = name === undefined ? undefined : destinationSpecNamed(config, name);
  if (spec === undefined) return undefined;
  await requirePresent(spec, config.file);
  return openDestination(spec, set === undefined ? {} : { set: set.id });
}

/**
 * The set as retention sees it on `spec` (undefined: its own folder): with the destination's own
 * `keep` when it has one, else the set's.
 */
export function withKeepOf(set: SetConfig, spec: DestinationSpec | undefined): SetConfig {
  const keep = spec?.config.keep as SetConfig["keep"] | undefined;
  return keep === undefined ? set : { ...set, keep };
}

/** A local destination's folder must exist to be read: its absence is a disk not mounted. */
export async function requirePresent(spec: DestinationSpec, configFile: string): Promise<void> {
  if (spec.config.type !== "local") return;
  const folder = spec.config.path;
  const st = await fs.stat(folder).catch((e: unknown) => {
    if (errnoCode(e) === "ENOENT" || errnoCode(e) === "ENOTDIR") return undefined;
    throw e;
  });
  if (st?.isDirectory()) return;
  throw new BschedError(
    "DESTINATION_MISSING",
    `destination ${spec.name} (${folder}) ${st ? "is not a folder" : "does not exist"}`,
    {
      hint: `is its disk mounted? mount it, or fix destinations.${spec.name}.path in ${configFile}`,
    },
  );
}

/** How messages name a destination: its folder alone for a set's own, else `destination NAME (where)`. */
export function describeDestination(dest: Destination): string {
  return dest.name === OWN_FOLDER_NAME ? dest.where : `destination ${dest.name} (${dest.where})`;
}

/** Destination.close, which never fails, for whoever opened it. */
export async function closeQuietly(dest: Destination | undefined): Promise<void> {
  await dest?.close?.().catch(() => undefined);
}
