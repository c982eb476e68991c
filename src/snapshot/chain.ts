import { BschedError } from "../core/errors.ts";
import type { Entry, Manifest } from "../core/types.ts";
// A type only: the Destination interface is a leaf (it imports nothing of bsched's layers).
import type { Destination } from "../destination/destination.ts";
import type { ManifestHeader } from "./manifest.ts";
import { parentOf } from "./paths.ts";
import { holdsChanges } from "./state.ts";

export interface ChainLink {
  name: string;
  /**
   * Where it is read from: the destination it was found on (for a self-extracting file found
   * alone, without its folder: a one-file destination holding only that file).
   */
  dest: Destination;
  header: ManifestHeader;
  digest: string;
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
    if (
      parent.header.name !== ref.name ||
      parent.header.set !== cur.header.set ||
      parent.header.letter !== cur.header.letter
    ) {
      throw new BschedError(
        "CHAIN_BROKEN",
        `backup ${cur.name} (set ${cur.header.set}, letter ${cur.header.letter}) needs its parent ${ref.name}, but that manifest is of backup ${parent.header.name}, set ${parent.header.set}, letter ${parent.header.letter}`,
        { hint: "the parent was replaced by a foreign backup; restore from an older complete chain" },
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

/** Why a chain's state cannot be restored safely: one per offending entry (or the state as a whole). */
export interface StateProblem {
  code: "UNSAFE_PATH" | "MANIFEST_INVALID";
  path?: string;
  problem: string;
}

/**
 * Check the state of the chain's newest backup before anything is written or called sound: the
 * manifest is the chain's newest, no path is listed twice, every entry's parent is a folder of
 * the state itself (so nothing is ever written through a symlink the chain planted, and no file
 * lies in a folder the state lacks), and every file's content comes from a backup of this chain.
 * Restore refuses on the first problem; verify reports them all: both call this, so they
 * cannot drift apart.
 */
export function stateProblems(manifest: Manifest, chain: ChainLink[]): StateProblem[] {
  const problems: StateProblem[] = [];
  const newest = chain.at(-1);
  if (newest && newest.name !== manifest.name) {
    problems.push({
      code: "MANIFEST_INVALID",
      problem: `the manifest names backup ${manifest.name}, not ${newest.name}`,
    });
  }
  // Only a whole state can be judged: a list of changes (src/snapshot/state.ts) lacks the rest.
  if (holdsChanges(manifest)) {
    problems.push({
      code: "MANIFEST_INVALID",
      problem: `the manifest of ${manifest.name} lists only changes, not the state to restore`,
    });
    return problems;
  }
  const kinds = new Map<string, Entry["kind"]>();
  for (const e of manifest.entries) {
    if (kinds.has(e.path)) {
      problems.push({ code: "MANIFEST_INVALID", path: e.path, problem: "listed twice in the manifest" });
    }
    kinds.set(e.path, e.kind);
  }
  const names = new Set(chain.map((l) => l.name));
  for (const e of manifest.entries) {
    const parent = parentOf(e.path);
    const kind = parent === undefined ? "dir" : kinds.get(parent);
    if (kind !== "dir") {
      const what = kind === undefined ? "is not in the backup" : `is a ${kind}`;
      problems.push({
        code: "UNSAFE_PATH",
        path: e.path,
        problem: `${JSON.stringify(e.path)} lies under ${JSON.stringify(parent)}, which ${what}`,
      });
    }
    if (e.kind === "file" && (e.from === undefined || !names.has(e.from))) {
      problems.push({
        code: "UNSAFE_PATH",
        path: e.path,
        problem: `file ${JSON.stringify(e.path)} names content in ${JSON.stringify(e.from)}, which is not part of its chain`,
      });
    }
    // A block-mapped file's blocks must come from its chain too (src/snapshot/blocks.ts).
    const outside = e.kind === "file" ? e.blocks?.in.find((n) => !names.has(n)) : undefined;
    if (outside !== undefined) {
      problems.push({
        code: "UNSAFE_PATH",
        path: e.path,
        problem: `file ${JSON.stringify(e.path)} names blocks in ${JSON.stringify(outside)}, which is not part of its chain`,
      });
    }
  }
  return problems;
}

/** `stateProblems`, thrown: the first problem refuses the restore, naming the backup and the path. */
export function checkChainState(manifest: Manifest, chain: ChainLink[]): void {
  const problems = stateProblems(manifest, chain);
  const first = problems[0];
  if (!first) return;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : "";
  throw new BschedError(first.code, `backup ${manifest.name}: ${first.problem}; refusing to restore${more}`, {
    hint: "the manifest was altered; run `bsched verify` and restore from another backup",
  });
}

/** Whether a backup can be restored, judged from its manifest header and its chain's links. */
export type Restorability = { state: "ok" } | { state: "broken"; reason: string };

/** What the folder shows of one backup, without reading its entries. */
export interface LinkFacts {
  name: string;
  /** Why its own manifest cannot be used (missing, unreadable, cut short); absent when it can. */
  damaged?: string | undefined;
  mode?: "full" | "incremental" | undefined;
  parent?: { name: string; digest: string } | null | undefined;
  /** Its manifest's digest; only needed for backups that are another's parent. */
  digest?: string | undefined;
}

/**
 * The restorability of every backup of a folder, from headers and chain links only: the
 * manifest is usable, the parent is present with the digest the child recorded, and so on up
 * to a full backup. The reason names the first link that fails, so a person knows what to fix.
 */
export function assessChains(links: LinkFacts[]): Map<string, Restorability> {
  const byName = new Map(links.map((l) => [l.name, l]));
  const out = new Map<string, Restorability>();
  const judge = (l: LinkFacts, path: Set<string>): Restorability => {
    const known = out.get(l.name);
    if (known) return known;
    let r: Restorability;
    if (l.damaged !== undefined) r = { state: "broken", reason: l.damaged };
    else if (!l.parent)
      r =
        l.mode === "full" ? { state: "ok" } : { state: "broken", reason: "incremental but names no parent" };
    else {
      const ref = l.parent;
      const parent = byName.get(ref.name);
      if (path.has(ref.name)) r = { state: "broken", reason: `its chain loops back to ${ref.name}` };
      else if (!parent) r = { state: "broken", reason: `parent ${ref.name} missing` };
      else if (parent.damaged !== undefined)
        r = { state: "broken", reason: `depends on broken ${ref.name} (${parent.damaged})` };
      else if (parent.digest !== undefined && parent.digest !== ref.digest)
        r = { state: "broken", reason: `parent ${ref.name} altered (manifest digest differs)` };
      else {
        path.add(l.name);
        const up = judge(parent, path);
        r = up.state === "ok" ? up : { state: "broken", reason: `depends on broken ${ref.name}` };
      }
    }
    out.set(l.name, r);
    return r;
  };
  for (const l of links) judge(l, new Set());
  return out;
}
