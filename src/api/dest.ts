import type { Config, SetConfig } from "../config/load.ts";
import {
  closeQuietly,
  destinationSpecNamed,
  openNamedDestination,
  withKeepOf,
} from "../destination/by-name.ts";
import type { Destination } from "../destination/destination.ts";

/**
 * `?dest=NAME` (or a body's `dest`) as the CLI's `--dest NAME` means it: `folder` or absent is the
 * set's own folder (undefined: the operations open it), another name an entry of `destinations:`
 * (an unknown one is USAGE listing the known names; a local one not mounted DESTINATION_MISSING).
 * `set` comes back with that destination's own `keep` when it has one (as `prune --dest`).
 */
export async function openDest(
  config: Config,
  set: SetConfig,
  name: string | undefined,
): Promise<{ dest: Destination | undefined; set: SetConfig; close(): Promise<void> }> {
  const dest = await openNamedDestination(config, name, set);
  const kept = name === undefined ? set : withKeepOf(set, destinationSpecNamed(config, name));
  return { dest, set: kept, close: () => closeQuietly(dest) };
}

/** Run `fn` with the destination `name` open, and close it after, whatever happens. */
export async function withDest<T>(
  config: Config,
  set: SetConfig,
  name: string | undefined,
  fn: (dest: Destination | undefined, set: SetConfig) => Promise<T>,
): Promise<T> {
  const d = await openDest(config, set, name);
  try {
    return await fn(d.dest, d.set);
  } finally {
    await d.close();
  }
}
