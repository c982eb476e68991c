import { decodeName } from "./remote-names.ts";

/** One entry of smbclient's `ls`: its name (decoded), whether a folder, and its size. */
export interface Listed {
  name: string;
  dir: boolean;
  size: number;
}

/**
 * `ls` lines: `  NAME<padding> ATTRS SIZE  Www Mmm dd hh:mm:ss yyyy` (client.c display_finfo:
 * the name padded to 30, attributes right-aligned in 7). The name is everything before the last
 * attribute/size/date run; the names bsched lists (backups, its own temporary entries, a backup's
 * top files) hold no such run.
 */
const LS_LINE = /^ {2}(.+?)\s+([A-Z]*)\s+(\d+)\s+\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/;

export function parseLs(lines: string[]): Listed[] {
  const out: Listed[] = [];
  for (const l of lines) {
    const m = LS_LINE.exec(l);
    if (!m || m[1] === "." || m[1] === "..") continue;
    out.push({ name: decodeName(m[1] as string), dir: (m[2] as string).includes("D"), size: Number(m[3]) });
  }
  return out;
}

/**
 * A recursive `ls` of `top` (its share path, `\`-separated): every regular file under it by its
 * `/`-separated path relative to `top`, with its size. smbclient lists the top's entries, then
 * each subfolder's after a line naming it (`\top\files\a`). A name listed twice in a folder
 * (an odd name whose line parses as another's) is left out: the caller opens what is missing.
 */
export function parseLsTree(lines: string[], top: string): Map<string, number> {
  const out = new Map<string, number>();
  const twice = new Set<string>();
  const prefix = `${top.toLowerCase()}\\`;
  let dir: string | undefined = "";
  for (const l of lines) {
    if (l.startsWith("\\")) {
      // A folder's header: its path under top, decoded part by part (undefined: not under top).
      dir = l.toLowerCase().startsWith(prefix)
        ? l.slice(prefix.length).split("\\").map(decodeName).join("/")
        : undefined;
      continue;
    }
    const m = LS_LINE.exec(l);
    if (dir === undefined || !m || m[1] === "." || m[1] === ".." || (m[2] as string).includes("D")) continue;
    const rel = dir === "" ? decodeName(m[1] as string) : `${dir}/${decodeName(m[1] as string)}`;
    if (out.has(rel)) twice.add(rel);
    out.set(rel, Number(m[3]));
  }
  for (const rel of twice) out.delete(rel);
  return out;
}

/** `allinfo`: a folder (attributes with D), or a file and the size of its data stream. */
export function parseAllinfo(lines: string[]): { dir: boolean; size: number | undefined } {
  const attrs = lines.map((l) => /^attributes: ([A-Z]*) /.exec(l)).find(Boolean);
  const stream = lines.map((l) => /^stream: \[::\$DATA\], (\d+) bytes/.exec(l)).find(Boolean);
  return { dir: (attrs?.[1] ?? "").includes("D"), size: stream ? Number(stream[1]) : undefined };
}

/** The line a listing ends with: `N blocks of size B. M blocks available`. */
export function parseDiskFree(lines: string[]): { free: number; blockSize: number } | undefined {
  const m = lines.map((l) => /(\d+) blocks of size (\d+)\. (\d+) blocks available/.exec(l)).find(Boolean);
  if (!m) return undefined;
  const blockSize = Number(m[2]);
  return { free: Number(m[3]) * blockSize, blockSize };
}
