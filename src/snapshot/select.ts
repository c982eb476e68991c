import { BschedError } from "../core/errors.ts";
import type { Manifest } from "../core/types.ts";

/**
 * A state narrowed to some of its paths (a restore of some files): each chosen path with
 * everything under it, and the folders above them (so every entry's parent is a folder of the
 * state, as restore checks). A path the state does not hold is refused (USAGE), naming it. Pure.
 */
export function selectPaths(manifest: Manifest, paths: string[]): Manifest {
  const chosen = paths.map((p) => normalize(p, manifest.name));
  const byPath = new Set(manifest.entries.map((e) => e.path));
  const missing = chosen.filter((p) => !byPath.has(p));
  if (missing.length > 0)
    throw new BschedError(
      "USAGE",
      `backup ${manifest.name} holds no ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ` (and ${missing.length - 5} more)` : ""}`,
      { hint: "choose paths the backup holds (browse its files), or restore it whole" },
    );
  const above = new Set<string>();
  for (const p of chosen)
    for (let i = p.indexOf("/"); i >= 0; i = p.indexOf("/", i + 1)) above.add(p.slice(0, i));
  const keep = (path: string) =>
    above.has(path) || chosen.some((c) => path === c || path.startsWith(`${c}/`));
  return { ...manifest, entries: manifest.entries.filter((e) => keep(e.path)) };
}

/** "a/b/", "/a/b" → "a/b"; refuses "", ".", ".." parts (never a way out of the target). */
function normalize(p: string, backup: string): string {
  const trimmed = p.replace(/^\/+|\/+$/g, "");
  const parts = trimmed.split("/");
  if (trimmed === "" || parts.some((x) => x === "" || x === "." || x === ".."))
    throw new BschedError("USAGE", `"${p}" is not a path of backup ${backup}`, {
      hint: 'paths are relative to the backup\'s root, with "/" between folders (e.g. "Data/cardholders.db")',
    });
  return trimmed;
}
