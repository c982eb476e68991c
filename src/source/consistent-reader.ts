import type { BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Entry, Warning } from "../core/types.ts";
import { changedSince, openSource, readSmallSync } from "./consistent.ts";
import type { OpenedSource, SourceReader } from "./reader.ts";
import type { ScanResult } from "./scan.ts";
import { isOwnFileName } from "./setlock.ts";
import {
  hasSqliteHeader,
  holdRollbackReadLock,
  type SnapshotResult,
  SQLITE_HEADER,
  snapshotSqlite,
  sqliteChangeKey,
  withSqliteKeys,
} from "./sqlite.ts";

export interface ConsistentReaderOptions {
  warn?: (w: Warning) => void;
  /** Called after each SQLite snapshot (the figures go to logs and benchmarks). */
  onSnapshot?: (entry: Entry, r: SnapshotResult) => void;
}

/**
 * The scanned source as a live backup stores it: without our own lock file and restore marker, with SQLite
 * databases keyed on their WAL too and their companion files left out, silently (a `-journal`
 * that vanished between listing and stat is SQLite at work, not news).
 */
export async function liveSource(root: string, scan: ScanResult): Promise<ScanResult> {
  const { entries, isCompanion } = await withSqliteKeys(
    root,
    scan.entries.filter((e) => !isOwnFileName(e.path)),
  );
  const warnings = scan.warnings.filter((w) => !isOwnFileName(w.path) && !isCompanion(w.path));
  return { entries, warnings };
}

/**
 * A SourceReader that gives every writer a consistent copy: a SQLite database is first copied
 * with SQLite's online backup into `scratch` (a folder of the backup's temporary folder, so a
 * crashed run's leftovers are cleaned with it) and the writer reads that point-in-time copy;
 * any other file is read in place and `changed()` tells whether it moved while read. The entry
 * of a snapshot keeps the original's mode, mtime and inode; its size is the copy's.
 */
export function consistentReader(
  root: string,
  scratch: string,
  opts: ConsistentReaderOptions = {},
): SourceReader {
  let seq = 0;
  let made = false;
  // A re-read (the writer's retry) must not repeat the warning.
  const copiedRaw = new Set<string>();
  return {
    // A database is never read in place: it goes through open() and its snapshot.
    readSmall: (entry) =>
      readSmallSync(
        path.join(root, entry.path),
        (d) => !(d.length >= 100 && d.subarray(0, 16).equals(SQLITE_HEADER)),
      ),
    async open(entry, openOpts = {}): Promise<OpenedSource> {
      const abs = path.join(root, entry.path);
      const { fh, st } = await openSource(abs);
      let isDb = false;
      try {
        isDb = await hasSqliteHeader(fh, st.size);
      } catch (e) {
        await fh.close();
        throw e;
      }
      if (!isDb) return { fh, st, changed: () => changedSince(fh, st), close: () => fh.close() };

      const key = await sqliteChangeKey(abs, st).finally(() => fh.close());
      const held = holdRollbackReadLock(abs);
      if (held) {
        // Rollback-journal mode: read the file itself under a read lock (no snapshot copy).
        try {
          const raw = await openSource(abs);
          return {
            fh: raw.fh,
            st: statLike(raw.st, { ctimeNs: key }),
            changed: () => changedSince(raw.fh, raw.st),
            async close() {
              try {
                await raw.fh.close();
              } finally {
                held.release();
              }
            },
          };
        } catch (e) {
          held.release();
          throw e;
        }
      }
      const atDest = openOpts.snapshotTo !== undefined;
      if (!made && !atDest) {
        await fs.mkdir(scratch, { recursive: true, mode: 0o700 });
        made = true;
      }
      const copy = openOpts.snapshotTo ?? path.join(scratch, `${++seq}-${path.basename(entry.path)}`);
      try {
        // Not inside `onSnapshot?.(…)`: an optional call skips evaluating its arguments when absent.
        const snapped = await snapshotSqlite(abs, copy);
        opts.onSnapshot?.(entry, snapped);
      } catch (e) {
        await fs.rm(copy, { force: true });
        if (!copiedRaw.has(entry.path)) {
          copiedRaw.add(entry.path);
          opts.warn?.({
            path: entry.path,
            code: "SQLITE_COPIED_RAW",
            message: `has a SQLite header but SQLite could not copy it (${(e as Error).message}); copied byte for byte instead`,
          });
        }
        const raw = await openSource(abs);
        return { ...raw, changed: () => changedSince(raw.fh, raw.st), close: () => raw.fh.close() };
      }
      const snap = await openSource(copy);
      const shown = statLike(st, { size: snap.st.size, ctimeNs: key });
      return {
        fh: snap.fh,
        st: shown,
        atDest,
        // Private to this run: only a bug could change it, and then we want to know.
        changed: () => changedSince(snap.fh, snap.st),
        async close() {
          await snap.fh.close();
          if (!atDest) await fs.rm(copy, { force: true });
        },
      };
    },
  };
}

/** `st` with some fields replaced, keeping its methods (isFile() and the like). */
function statLike(st: BigIntStats, over: Partial<Pick<BigIntStats, "size" | "ctimeNs">>): BigIntStats {
  return Object.assign(Object.create(Object.getPrototypeOf(st)) as BigIntStats, st, over);
}
