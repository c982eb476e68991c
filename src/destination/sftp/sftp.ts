import type { DestinationSpec } from "../../config/load.ts";
import type { Destination } from "../destination.ts";

/** Not built yet (issue 11). */
export function openSftp(spec: DestinationSpec): Destination {
  throw new Error(`destination ${spec.name}: type sftp is not built yet`);
}
