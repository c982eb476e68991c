import fs from "node:fs/promises";
import path from "node:path";
import { after, before, describe } from "node:test";
import type { DestinationSpec } from "../src/config/load.ts";
import { SmbDestination } from "../src/destination/smb/smb.ts";
import { deletingName } from "../src/platform/names.ts";
import { tempDir } from "./helpers/cli.ts";
import { destinationContract } from "./helpers/destination-contract.ts";
import { type SmbServer, smbdMissing, startSmbd } from "./helpers/servers/smbd.ts";

const skip = smbdMissing();

/** An smb destination spec for `server`, in its own folder `sub` of the share. */
function specOf(
  server: SmbServer,
  state: string,
  sub: string,
  login?: Partial<{ user: string; password: string; domain: string }>,
): DestinationSpec {
  return {
    name: "nas",
    state,
    config: {
      type: "smb",
      share: server.share,
      port: server.port,
      path: sub,
      login: { domain: server.domain, user: server.user, password: server.password, ...login },
      verify: "read",
    },
  };
}

describe("smb destination", { skip }, () => {
  let server: SmbServer;
  let state: string;
  let n = 0;
  before(async () => {
    server = await startSmbd();
    state = await tempDir("bsched-smb-state-");
  });
  after(async () => {
    await server?.cleanup();
    if (state) await fs.rm(state, { recursive: true, force: true });
  });

  destinationContract("smb", async () => {
    const sub = `case ${++n}/site`;
    const dest = new SmbDestination(specOf(server, state, sub));
    const folder = path.join(server.dir, sub);
    return {
      dest,
      cleanup: () => fs.rm(path.join(server.dir, `case ${n}`), { recursive: true, force: true }),
      // What a remove killed after its rename and part of its deltree leaves (SmbDestination.remove).
      async crashDuringRemove(backup) {
        const doomed = path.join(folder, deletingName(backup));
        await fs.rename(path.join(folder, backup), doomed);
        await fs.rm(path.join(doomed, "manifest.json"));
      },
    };
  });
});
