import path from "node:path";
import type { DestinationSpec } from "../config/load.ts";
import type { Destination } from "./destination.ts";
import { LocalDestination } from "./local/local.ts";
import { openS3 } from "./s3/s3.ts";
import { openSftp } from "./sftp/sftp.ts";
import { openSmb } from "./smb/smb.ts";

/**
 * The Destination a `destinations:` entry describes. Nothing connects here: a remote destination
 * connects (and loads its client library) at its first use, so commands that never touch it pay
 * nothing. The caller closes it (Destination.close) when done.
 */
export function openDestination(spec: DestinationSpec, opts: { set?: string } = {}): Destination {
  const c = spec.config;
  switch (c.type) {
    case "local":
      return new LocalDestination(path.resolve(c.path), {
        name: spec.name,
        anchor: path.dirname(path.resolve(c.path)),
        key: `destinations.${spec.name}.path`,
        ...(opts.set === undefined ? {} : { set: opts.set }),
      });
    case "sftp":
      return openSftp(spec);
    case "s3":
      return openS3(spec);
    case "smb":
      return openSmb(spec);
  }
}

/** Where a remote destination keeps a backup written there until it is uploaded (stage().dir). */
export function scratchOf(spec: DestinationSpec): string {
  return path.join(spec.state, "scratch", spec.name);
}
