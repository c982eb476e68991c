import { createHash } from "node:crypto";
import type { Entry } from "../../src/core/types.ts";
import { makeServer, type TestServer } from "./server.ts";

/**
 * The backup types every format contract case runs on (test/format-contract*.test.ts). A new
 * format is added here, and must then pass the same cases.
 */
export const TYPES = ["separate", "compressed"] as const;
export type Type = (typeof TYPES)[number];

/** A server (helpers/server.ts) whose set `data` makes backups of `type`. */
export function formatServer(type: Type, mode: "full" | "incremental" = "incremental"): Promise<TestServer> {
  return makeServer({ mode, setKeys: type === "compressed" ? ["type: compressed"] : [] });
}

/** A file entry as a forged manifest would hold it: `content`'s size and digest, stored in `from`. */
export function fileEntry(p: string, content: string, from: string): Entry {
  return {
    path: p,
    kind: "file",
    mode: 0o644,
    mtimeNs: "1600000000000000000",
    uid: 0,
    gid: 0,
    size: Buffer.byteLength(content),
    sha256: createHash("sha256").update(content).digest("hex"),
    from,
  };
}
