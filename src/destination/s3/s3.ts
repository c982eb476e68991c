import type { DestinationSpec } from "../../config/load.ts";
import type { Destination } from "../destination.ts";

/** Not built yet (issue 11). */
export function openS3(spec: DestinationSpec): Destination {
  throw new Error(`destination ${spec.name}: type s3 is not built yet`);
}
