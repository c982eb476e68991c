import type { SetConfig } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import type { EntryKind } from "../core/types.ts";
import type { Destination } from "../destination/destination.ts";
import { locateForSet } from "../restore/locate.ts";
import { type OpContext, throwIfAborted } from "./context.ts";

export interface BrowsedEntry {
  /** Its name in the folder, and its path in the backup (what a restore of some `paths` takes). */
  name: string;
  path: string;
  kind: EntryKind;
  /** file: bytes. */
  size: number | null;
  /** ISO instant (to the millisecond; the manifest keeps nanoseconds). */
  mtime: string;
  mode: number;
  /** symlink: its text. */
  target: string | null;
  /** file: the backup of the chain that stores its content (itself, or an older one for an unchanged file). */
  from: string | null;
  /** dir: how many entries it holds. */
  entries: number | null;
}

export interface BrowsedFolder {
  backup: string;
  /** The folder listed, relative to the backup's root ("" for the root). */
  path: string;
  entries: BrowsedEntry[];
}

/**
 * One folder level of a backup's files, from its manifest (the state it restores: an
 * incremental's too), folders first, then by name. No file content is read. The backup is found
 * as restore finds it (locateForSet), so its name, set and chain are checked the same way.
 */
export async function browseBackup(
  ctx: Pick<OpContext, "signal">,
  set: SetConfig,
  backup: string,
  opts: { path?: string | undefined; destination?: Destination | undefined } = {},
): Promise<BrowsedFolder> {
  throwIfAborted(ctx.signal);
  const { manifest } = await locateForSet(set, backup, opts.destination);
  const dir = (opts.path ?? "").replace(/^\/+|\/+$/g, "");
  if (dir !== "" && !manifest.entries.some((e) => e.path === dir && e.kind === "dir"))
    throw new BschedError("NOT_FOUND", `backup ${manifest.name} holds no folder ${dir}`, {
      hint: "browse from its root (no path) and open the folders it lists",
    });
  const prefix = dir === "" ? "" : `${dir}/`;
  const counts = new Map<string, number>();
  const here: BrowsedEntry[] = [];
  for (const e of manifest.entries) {
    if (!e.path.startsWith(prefix)) continue;
    const rest = e.path.slice(prefix.length);
    const slash = rest.indexOf("/");
    if (slash >= 0) {
      const child = prefix + rest.slice(0, slash);
      if (rest.indexOf("/", slash + 1) < 0) counts.set(child, (counts.get(child) ?? 0) + 1);
      continue;
    }
    here.push({
      name: rest,
      path: e.path,
      kind: e.kind,
      size: e.kind === "file" ? (e.size ?? 0) : null,
      mtime: new Date(Number(BigInt(e.mtimeNs) / 1_000_000n)).toISOString(),
      mode: e.mode,
      target: e.kind === "symlink" ? (e.target ?? "") : null,
      from: e.kind === "file" ? (e.from ?? manifest.name) : null,
      entries: null,
    });
  }
  for (const e of here) if (e.kind === "dir") e.entries = counts.get(e.path) ?? 0;
  here.sort((a, b) =>
    a.kind === "dir" && b.kind !== "dir"
      ? -1
      : b.kind === "dir" && a.kind !== "dir"
        ? 1
        : a.name < b.name
          ? -1
          : 1,
  );
  return { backup: manifest.name, path: dir, entries: here };
}
