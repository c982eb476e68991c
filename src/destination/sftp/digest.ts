import type { RemoteFs } from "./remote.ts";

/**
 * The server's own sha256 of a backup's stored files (Destination.storedDigest): `sha256sum`
 * (GNU coreutils) run by the server over an exec channel of the session the files went through,
 * as rclone runs `md5sum`. One command per backup, not one per file: a round trip and a process
 * each would be most of a small copy's check. Where the server runs no such command (an sftp-only
 * account, a chroot without coreutils, a shell that is not POSIX, another server) the result is
 * undefined and the copy is read back instead.
 */

/** At most this much output (64 hex, 2 separators, the name, a NUL per file): a runaway server is cut off. */
const MAX_OUTPUT = 64 << 20;

/** `s` as one word of a POSIX shell command line: single-quoted, its quotes closed and escaped. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Hash every regular file under `dir` (symbolic links are not followed): file names never reach
 * the command line (find hands them to sha256sum), and `-z` ends each line with NUL and leaves
 * the names unescaped, so any name (quotes, spaces, newlines, a leading dash) reads back exactly.
 */
export function hashCommand(dir: string): string {
  return `cd -- ${shellQuote(dir)} && find . -type f -exec sha256sum -z -- {} +`;
}

/**
 * `sha256sum -z` output, parsed strictly: each record `<64 hex> <space or *><./name>` ending
 * with NUL. Anything else (a banner, an error, a cut-short record, a name twice) makes the whole
 * output untrusted: undefined.
 */
export function parseSums(out: Buffer): Map<string, string> | undefined {
  const text = out.toString("utf8");
  if (text.length === 0) return new Map();
  if (!text.endsWith("\0")) return undefined;
  const sums = new Map<string, string>();
  for (const rec of text.slice(0, -1).split("\0")) {
    const m = /^([0-9a-f]{64}) [ *]\.\/(.+)$/s.exec(rec);
    if (!m || sums.has(m[2] as string)) return undefined;
    sums.set(m[2] as string, m[1] as string);
  }
  // Valid UTF-8 only: a name that is not would not round-trip through the string.
  if (!Buffer.from(text, "utf8").equals(out)) return undefined;
  return sums;
}

/**
 * The digests of one backup, computed by the server at the first file asked and handed out once
 * each: the next pass over the same file (a later check) makes the server hash it again, so no
 * digest outlives the check it was computed for. Writes through the destination forget them.
 */
export class ServerDigests {
  readonly #fs: RemoteFs;
  #batch: { dir: string; sums: Promise<Map<string, string> | undefined> } | undefined;

  constructor(fs: RemoteFs) {
    this.#fs = fs;
  }

  forget(): void {
    this.#batch = undefined;
  }

  /** The sha256 of `file` (relative to `dir`, `/`-separated) as the server computes it now, or undefined. */
  async of(dir: string, file: string, signal?: AbortSignal): Promise<string | undefined> {
    let b = this.#batch;
    const fresh = b === undefined || b.dir !== dir || !(await b.sums)?.has(file);
    if (fresh) {
      b = { dir, sums: this.#hashAll(dir, signal) };
      this.#batch = b;
    }
    const sums = await (b as NonNullable<typeof b>).sums;
    const d = sums?.get(file);
    sums?.delete(file);
    return d;
  }

  async #hashAll(dir: string, signal?: AbortSignal): Promise<Map<string, string> | undefined> {
    const r = await this.#fs.exec("hashing", dir, hashCommand(dir), MAX_OUTPUT, signal);
    if (r === undefined || r.code !== 0) return undefined;
    return parseSums(r.stdout);
  }
}
