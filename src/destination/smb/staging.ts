import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { BschedError } from "../../core/errors.ts";
import { MANIFEST_FILE } from "../../snapshot/manifest.ts";
import type { Staging } from "../destination.ts";
import type { SessionPool } from "./pool.ts";
import { quoted } from "./remote-names.ts";
import type { SmbSession } from "./session.ts";
import { isNotFound } from "./smb-errors.ts";

type Fail = (doing: string, r: { status: string | undefined; lines: string[] }) => Error;

export interface ShareStagingOptions {
  pool: SessionPool;
  /** The local scratch folder the writers write into (stage().dir). */
  local: string;
  backup: string;
  /** The share path of a file in the remote temporary folder. */
  remoteOf(...parts: string[]): string;
  /** The remote temporary folder, and the backup's final name. */
  temp: string;
  final: string;
  /** A file of the temporary folder as messages show it. */
  show(file?: string): string;
  error: Fail;
}

/**
 * A backup being staged on a share: a remote temporary folder `.<name>.tmp-PID-HEX` beside where
 * it will be, filled by `put` (streamed straight from the body, no local copy) and, at publish,
 * with what the writers left in the local scratch folder; then the manifest, last; then one
 * rename (which SMB refuses when the name exists) makes it a backup. Until that rename nothing
 * of it is listed as a backup, whatever dropped.
 */
export function stagingOnShare(o: ShareStagingOptions): Staging {
  let done = false;
  let publishing = false;
  /** Remote folders made under the temporary folder (relative, `/`-separated). */
  const dirs = new Set<string>([""]);
  /** Every name staged, by its lower-case form: a share tells no case apart. */
  const seen = new Map<string, string>();

  const claim = (rel: string) => {
    const key = rel.toLowerCase();
    const prev = seen.get(key);
    if (prev !== undefined && prev !== rel) {
      throw new BschedError(
        "IO",
        `${o.show()}: ${JSON.stringify(prev)} and ${JSON.stringify(rel)} differ only by case, which an SMB share does not tell apart`,
        { hint: "rename one of them in the source, or copy this set to a destination that is not SMB" },
      );
    }
    seen.set(key, rel);
  };

  const mkdirs = async (s: SmbSession, relDir: string) => {
    const parts = relDir.split("/").filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join("/");
      if (dirs.has(rel)) continue;
      claim(rel);
      const r = await s.run(`mkdir ${quoted(o.remoteOf(rel))}`);
      if (r.status !== undefined && r.status !== "NT_STATUS_OBJECT_NAME_COLLISION") {
        throw o.error(`making ${o.show(rel)}`, r);
      }
      dirs.add(rel);
    }
  };

  const upload = async (s: SmbSession, rel: string, body: Readable, size: number) => {
    await mkdirs(s, path.posix.dirname(rel) === "." ? "" : path.posix.dirname(rel));
    claim(rel);
    await s.upload(o.remoteOf(rel), body, size, o.show(rel));
  };

  /** Every folder and regular file under the local scratch folder, parents first. */
  async function* walk(rel: string): AsyncGenerator<{ rel: string; dir: boolean; size: number }> {
    for (const e of await fs.readdir(path.join(o.local, rel), { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        yield { rel: r, dir: true, size: 0 };
        yield* walk(r);
      } else if (e.isFile()) {
        yield { rel: r, dir: false, size: (await fs.stat(path.join(o.local, r))).size };
      } else {
        throw new BschedError(
          "IO",
          `${path.join(o.local, r)}: not a regular file, cannot be stored on a share`,
          {
            hint: "a backup holds only folders and regular files: this is a bug, please report it",
          },
        );
      }
    }
  }

  return {
    dir: o.local,
    async put(file: string, body: Readable, size: number) {
      if (done || publishing) throw new Error(`${o.show()}: put after publish`);
      if (file === MANIFEST_FILE) throw new Error("the manifest is written by publish");
      await o.pool.use((s) => upload(s, file, body, size));
    },
    async publish(manifestText: string) {
      if (done || publishing) {
        throw new BschedError("IO", `${o.show()}: already published or aborted`, { hint: "this is a bug" });
      }
      publishing = true;
      try {
        await o.pool.use(async (s) => {
          const there = await s.run(`allinfo ${quoted(o.final)}`);
          if (!isNotFound(there.status)) {
            throw new BschedError(
              "IO",
              `backup ${o.backup} already exists on ${o.show().replace(/\/[^/]*$/, "")}`,
              {
                hint: "run the backup again",
              },
            );
          }
          for await (const e of walk("")) {
            if (e.dir) await mkdirs(s, e.rel);
            else if (e.rel !== MANIFEST_FILE) {
              await upload(s, e.rel, createReadStream(path.join(o.local, e.rel)), e.size);
            }
          }
          const m = Buffer.from(manifestText, "utf8");
          await upload(s, MANIFEST_FILE, Readable.from([m]), m.length);
          const r = await s.run(`rename ${quoted(o.temp)} ${quoted(o.final)}`);
          if (r.status === "NT_STATUS_OBJECT_NAME_COLLISION") {
            throw new BschedError("IO", `backup ${o.backup} appeared on the share during the run`, {
              hint: "run the backup again",
            });
          }
          if (r.status !== undefined) throw o.error(`publishing ${o.backup}`, r);
        });
        done = true;
      } finally {
        publishing = false;
      }
      await fs.rm(o.local, { recursive: true, force: true }).catch(() => undefined);
    },
    async abort() {
      if (done) return;
      done = true;
      await o.pool.use((s) => s.run(`deltree ${quoted(o.temp)}`)).catch(() => undefined);
      await fs.rm(o.local, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
