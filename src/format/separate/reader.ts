import { createHash } from "node:crypto";
import type { Entry } from "../../core/types.ts";
import { copyAndHash, writeAll } from "../../platform/copy.ts";
import { forEachLimit } from "../../platform/fsutil.ts";
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
    async copy(out, onBytes, opts) {
      if (typeof out === "function") await out(data);
      else if (out) await writeAll(out, data);
      onBytes?.(data.length);
      const sha256 = opts?.hash === false ? "" : createHash("sha256").update(data).digest("hex");
      return { bytes: data.length, sha256 };
    },
  };
}

/**
 * The `separate` type's read side: each stored file under files/, read through the backup's
 * Destination (on a local one: a regular file only, through no link at any step, never waiting
 * on a FIFO). Small files are read whole (readSmall: on a local one with synchronous calls).
 */
export function separateReader(link: ChainLink): BackupReader {
  const { dest, name } = link;
  const stored = (e: Entry) => `${FILES_DIR}/${e.path}`;
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
              ? await dest.readSmall(name, stored(e), SMALL_FILE_MAX)
              : undefined;
          if (small) content = inMemory(small);
          else {
            // A file that turns out larger than its entry says takes the stream.
            const h = await dest.open(name, stored(e));
            close = () => h.close();
            content = {
              copy: (out, onBytes, o) => copyAndHash(h, out, onBytes, { hash: o?.hash !== false }),
            };
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
