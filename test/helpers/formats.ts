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
