import type { SetConfig } from "../config/load.ts";
import type { Destination } from "./destination.ts";
import { LocalDestination } from "./local/local.ts";
import { openDestination } from "./open.ts";

/**
 * A set's own destination, from its config: its backup folder (`folder`: a path, or a
 * destination's name). The one place that knows; pipelines and operations take a `destination`
 * option that overrides it (a test's fault-injecting wrapper), else call this.
 */
export function destinationOf(set: SetConfig): Destination {
  if (set.folderSpec !== undefined && set.folderSpec.config.type !== "local") {
    return openDestination(set.folderSpec, { set: set.id });
  }
  return new LocalDestination(set.folder, {
    ...(set.folderAnchor === undefined ? {} : { anchor: set.folderAnchor }),
    set: set.id,
    ...(set.folderKey === undefined ? {} : { key: set.folderKey }),
    ...(set.folderSpec === undefined ? {} : { name: set.folderSpec.name }),
  });
}
