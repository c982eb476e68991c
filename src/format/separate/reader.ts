import { createHash } from "node:crypto";
import type { Entry } from "../../core/types.ts";
import { copyAndHash, writeAll } from "../../platform/copy.ts";
import { beneath, forEachLimit, openRegular, readRegularSmallSync } from "../../platform/fsutil.ts";
import type { ChainLink } from "../../snapshot/chain.ts";
import { FILES_DIR } from "../../snapshot/manifest.ts";
import { SMALL_FILE_MAX } from "../../source/consistent.ts";
import type { BackupReader, StoredContent } from "../types.ts";

/**
 * Content held in memory: hashed, and written to `out` when given. (Shared with the compressed
 * reader, which gathers small members the same way.)
 */
export function inMemory(data: Buffer): StoredContent {
  return {
    data,
    async copy(out, onBytes) {
      if (typeof out === "function") await out(data);
      else if (out) await writeAll(out, data);
      onBytes?.(data.length);
      return { bytes: data.length, sha256: createHash("sha256").update(data).digest("hex") };
    },
  };
}

/**
 * The `separate` type's read side: each stored file under files/, read from a regular file only,
 * through no link at any step (files/ included: beneath()), never waiting on a FIFO
 * (O_NOFOLLOW|O_NONBLOCK: openRegular). Small files are read whole with synchronous calls.
 */
export function separateReader(link: ChainLink): BackupReader {
  const realDirs = new Set<string>();
  const stored = (e: Entry) => beneath(link.path, `${FILES_DIR}/${e.path}`, realDirs);
  return {
    type: "separate",
    name: link.name,
    async readAll(wanted, visit, opts) {
      await forEachLimit(wanted, opts.concurrency ?? 8, async (e) => {
        let content: StoredContent;
        let close = async () => {};
        try {
          const small =
            (e.size ?? Number.POSITIVE_INFINITY) <= SMALL_FILE_MAX
              ? readRegularSmallSync(stored(e), SMALL_FILE_MAX)
              : undefined;
          if (small) content = inMemory(small);
          else {
            // A file that turns out larger than its entry says takes the stream.
            const fh = await openRegular(stored(e));
            close = () => fh.close();
            content = { copy: (out, onBytes) => copyAndHash(fh, out, onBytes) };
          }
        } catch (err) {
          opts.unread(e, err);
          return;
        }
        try {
          await visit(e, content);
        } finally {
          await close();
        }
      });
    },
    async checkWhole() {
      return { problems: [], readable: true };
    },
  };
}
