import { createHash } from "node:crypto";
import path from "node:path";
import type { ReadEntry } from "tar";
import type { Entry } from "../core/types.ts";
import { readSelfExtractingHeader } from "../format/compressed/header.ts";
import { selfExtractingName } from "../format/compressed/names.ts";
import { forEachMember } from "../format/compressed/reader.ts";
import { type CopyResult, type Sink, writeAll } from "../platform/copy.ts";
import type { ChainLink } from "../snapshot/chain.ts";

/** The self-extracting file of a compressed backup in its folder. */
export function payloadFile(link: ChainLink): string {
  return link.payload ?? path.join(link.path, selfExtractingName(link.name));
}

/**
 * Call `onFile` for every member of a compressed backup's payload that is a regular file the
 * caller wants. Names come from the manifest, never from the payload: a member whose name is
 * not wanted (or is not a plain file) is skipped, so a hostile payload cannot choose where
 * anything is written.
 */
export async function forEachPayloadFile(
  link: ChainLink,
  wanted: Map<string, Entry>,
  onFile: (e: Entry, entry: ReadEntry) => Promise<void>,
): Promise<void> {
  const file = payloadFile(link);
  const header = await readSelfExtractingHeader(file);
  await forEachMember(file, header, async (entry) => {
    const e = entry.type === "File" ? wanted.get(entry.path) : undefined;
    if (e) await onFile(e, entry);
    return undefined;
  });
}

/** Hash a member's bytes, writing them to `out` (a file, or a sink such as holeSink's) when given. */
export async function hashStream(
  entry: ReadEntry,
  out: Sink | undefined,
  onBytes?: (n: number) => void,
): Promise<CopyResult> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of entry) {
    const b = chunk as Buffer;
    hash.update(b);
    if (typeof out === "function") await out(b);
    else if (out) await writeAll(out, b);
    bytes += b.length;
    onBytes?.(b.length);
  }
  return { bytes, sha256: hash.digest("hex") };
}
