import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
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

  test("storedSizes: every file of a backup from one recursive listing, odd names included; the session lists flat again after", async () => {
    const sub = `case ${++n}/site`;
    const dest = new SmbDestination(specOf(server, state, sub));
    try {
      await dest.ready();
      const name = "D_2026_12_03_04_00_00";
      const files: Record<string, number> = {
        "files/a b/c;d.txt": 5,
        "files/odd:name?.db": 3,
        "files/x/y/z/deep.bin": 70_000,
        "files/t   N   7  Mon Jan  1 00:00:00 2024": 9,
        "files/empty": 0,
      };
      const staging = await dest.stage(name);
      for (const [file, size] of Object.entries(files))
        await staging.put(file, Readable.from([Buffer.alloc(size, 7)]), size);
      await staging.publish('{"x":1}\n');
      const sizes = await dest.storedSizes(name);
      assert.deepEqual(Object.fromEntries([...sizes].sort()), {
        ...Object.fromEntries(Object.entries(files).sort()),
        "manifest.json": 8,
      });
      // `recurse` was toggled back: the top lists flat (no nested names), and a missing backup is empty.
      assert.deepEqual(await dest.names(), [name]);
      assert.deepEqual([...(await dest.storedSizes("D_2026_12_03_05_00_00"))], []);
    } finally {
      await dest.close();
      await fs.rm(path.join(server.dir, `case ${n}`), { recursive: true, force: true });
    }
  });
});
