import type { ChainLink } from "../snapshot/chain.ts";
import { separateReader } from "./separate/reader.ts";
import type { BackupReader } from "./types.ts";

/**
 * The read side of a backup of either type: the one place that looks at the type. The compressed
 * reader is loaded only when a compressed backup is read (tar's code is not needed otherwise).
 */
export async function openBackupReader(link: ChainLink): Promise<BackupReader> {
  if (link.header.type !== "compressed") return separateReader(link);
  const { compressedReader } = await import("./compressed/reader.ts");
  return compressedReader(link);
}
