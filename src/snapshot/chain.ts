import { BschedError } from "../core/errors.ts";
import type { ManifestHeader } from "./manifest.ts";

export interface ChainLink {
  name: string;
  /** The backup's folder (for a self-extracting file found alone: the folder holding the file). */
  path: string;
  header: ManifestHeader;
  digest: string;
  /** A compressed backup's self-extracting file when it was found alone, without its folder. */
  payload?: string;
}

/**
 * Resolve the chain ending at `newest`: follow parent references back to a full backup,
 * checking at each step that the parent exists and that its manifest digest is the one the
 * child recorded (unless `checkDigests` is false: then links only need to exist). Returns the
 * links oldest first.
 */
export async function resolveChain(
  newest: ChainLink,
  load: (name: string) => Promise<ChainLink | undefined>,
  opts: { checkDigests?: boolean } = {},
): Promise<ChainLink[]> {
  const checkDigests = opts.checkDigests ?? true;
  const chain: ChainLink[] = [newest];
  const seen = new Set([newest.name]);
  let cur = newest;
  while (cur.header.parent) {
    const ref = cur.header.parent;
    if (seen.has(ref.name)) {
      throw new BschedError("CHAIN_BROKEN", `backup ${cur.name}: its chain loops back to ${ref.name}`);
    }
    const parent = await load(ref.name);
    if (!parent) {
      throw new BschedError(
        "CHAIN_BROKEN",
        `backup ${cur.name} needs its parent ${ref.name}, which is missing or incomplete`,
        {
          hint: `copy the folder ${ref.name} beside it (a chain is a full backup and every incremental after it)`,
        },
      );
    }
    if (checkDigests && parent.digest !== ref.digest) {
      throw new BschedError(
        "CHAIN_BROKEN",
        `backup ${cur.name}: its parent ${ref.name} is not the one it was made from (manifest digest differs)`,
        {
          hint: "the parent was altered or replaced; restore from an older complete chain",
        },
      );
    }
    seen.add(parent.name);
    chain.unshift(parent);
    cur = parent;
  }
  if (cur.header.mode !== "full") {
    throw new BschedError("CHAIN_BROKEN", `backup ${cur.name} is incremental but names no parent`);
  }
  return chain;
}
