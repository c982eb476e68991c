import fs from "node:fs/promises";
import { LoneFileDestination } from "./lone-file.ts";

/**
 * What a path given on the command line (`restore --from`, `verify --from`) is: a backup folder
 * (read through a LocalDestination over the folder holding it), a file (a self-extracting file,
 * read at its real path as a one-file destination; `regular` false for a FIFO, socket or device,
 * which reading refuses), or nothing. The path itself may be a link: the user's choice.
 */
export async function backupAtPath(
  abs: string,
): Promise<{ kind: "folder" } | { kind: "file"; regular: boolean; lone: LoneFileDestination } | undefined> {
  const st = await fs.stat(abs).catch(() => undefined);
  if (!st) return undefined;
  if (st.isDirectory()) return { kind: "folder" };
  return { kind: "file", regular: st.isFile(), lone: new LoneFileDestination(await fs.realpath(abs)) };
}
