import type { SetConfig } from "../config/load.ts";
import type { Destination } from "./destination.ts";
import { LocalDestination } from "./local/local.ts";

/**
 * A set's own destination, from its config: today always its backup folder (`folder`). The one
 * place that knows; pipelines and operations take a `destination` option that overrides it (a
 * test's fault-injecting wrapper), else call this.
 */
export function destinationOf(set: SetConfig): Destination {
  return new LocalDestination(set.folder, {
    ...(set.folderAnchor === undefined ? {} : { anchor: set.folderAnchor }),
    set: set.id,
    ...(set.folderKey === undefined ? {} : { key: set.folderKey }),
  });
}
