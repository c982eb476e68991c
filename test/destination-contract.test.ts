import fs from "node:fs/promises";
import path from "node:path";
import { faulty } from "../src/destination/faulty.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { deletingName } from "../src/platform/names.ts";
import { tempDir } from "./helpers/cli.ts";
import { type DestinationUnderTest, destinationContract } from "./helpers/destination-contract.ts";

/**
 * The Destination contract run on every implementation: `local` (a folder), and the fault wrapper
 * with no fault planned, and with only the faults a correct caller must absorb (latency, short
 * reads). The next issue adds SFTP, S3 and SMB here.
 */
async function local(): Promise<DestinationUnderTest & { dest: LocalDestination }> {
  const dir = await tempDir("bsched-dest-");
  const folder = path.join(dir, "Backup");
  return {
    dest: new LocalDestination(folder, { set: "data" }),
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
    // What a remove killed after its rename and part of its rm leaves (LocalDestination.remove).
    async crashDuringRemove(backup) {
      const doomed = path.join(folder, deletingName(backup));
      await fs.rename(path.join(folder, backup), doomed);
      await fs.rm(path.join(doomed, "manifest.json"));
    },
  };
}

destinationContract("local", local);

destinationContract("faulty, no fault", async () => {
  const u = await local();
  return { ...u, dest: faulty(u.dest, {}) };
});

destinationContract("faulty, latency and short reads", async () => {
  const u = await local();
  return { ...u, dest: faulty(u.dest, { latencyMs: 1, shortReads: 1000 }) };
});
