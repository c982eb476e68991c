import type { BigIntStats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Entry } from "../core/types.ts";
import { changedSince, openSource, readSmallSync, type SmallRead } from "./consistent.ts";

/** An open source file, ready to be read once from offset 0. */
export interface OpenedSource {
  fh: FileHandle;
  /** The file's state when opened; the content read must be checked against it afterwards. */
  st: BigIntStats;
  /** True when the file moved (size, mtime, ctime) since it was opened. */
  changed(): Promise<boolean>;
  close(): Promise<void>;
  /** The content was written straight to the `snapshotTo` the caller gave: hash it, do not copy it. */
  atDest?: boolean;
}

export interface OpenOptions {
  /**
   * Where the caller will store the file: a reader that must make a copy anyway (a SQLite
   * snapshot) writes it there directly, sparing a second write of every database byte.
   */
  snapshotTo?: string;
}

/**
 * How writers read source files. The plain reader opens the file itself; a consistent reader
 * may substitute a point-in-time copy (e.g. SQLite's online backup) behind the same interface.
 */
export interface SourceReader {
  open(entry: Entry, opts?: OpenOptions): Promise<OpenedSource>;
  /** A small file read whole, synchronously, when it can be read in place; else undefined (use open). */
  readSmall?(entry: Entry): SmallRead | undefined;
}

export function plainReader(root: string): SourceReader {
  return {
    async open(entry) {
      const { fh, st } = await openSource(path.join(root, entry.path));
      return { fh, st, changed: () => changedSince(fh, st), close: () => fh.close() };
    },
    readSmall: (entry) => readSmallSync(path.join(root, entry.path), () => true),
  };
}
