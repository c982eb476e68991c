import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import type { DestinationSpec } from "../src/config/load.ts";
import type { Destination } from "../src/destination/destination.ts";
import { openDestination } from "../src/destination/open.ts";
import { deletingName } from "../src/platform/names.ts";
import { tempDir } from "./helpers/cli.ts";
import { type DestinationUnderTest, destinationContract } from "./helpers/destination-contract.ts";
import { type SshdServer, sshdMissing, startSshd } from "./helpers/servers/sshd.ts";

/**
 * The `sftp` destination against a real OpenSSH sshd on loopback (test/helpers/servers/sshd.ts):
 * the Destination contract, then what goes wrong with a remote server (host key, credentials,
 * the server down or killed mid-transfer).
 */
const missing = sshdMissing();

let server: SshdServer;
let state: string;
let cases = 0;

before(async () => {
  if (missing) return;
  server = await startSshd({ password: true });
  state = await tempDir("bsched-sftp-state-");
});

after(async () => {
  await server?.close();
});

/** A destination spec on the test server; `over` replaces any key (a wrong password, another host key). */
export function sftpSpec(s: SshdServer, sub: string, over: Record<string, unknown> = {}): DestinationSpec {
  return {
    name: "vault",
    state,
    config: {
      type: "sftp",
      host: s.host,
      port: s.port,
      user: s.user,
      privateKey: s.privateKeyFile,
      hostKey: s.hostKeyFingerprint,
      path: path.posix.join(s.dir, sub),
      verify: "read",
      ...over,
    } as DestinationSpec["config"],
  };
}

async function fresh(): Promise<DestinationUnderTest & { folder: string }> {
  const sub = `case-${++cases}`;
  const folder = path.join(server.dir, sub);
  const dest = openDestination(sftpSpec(server, sub));
  return {
    dest,
    folder,
    cleanup: () => fs.rm(folder, { recursive: true, force: true }),
    // The server's folder is on this machine: leave what a remove killed half-way leaves.
    async crashDuringRemove(backup) {
      const doomed = path.join(folder, deletingName(backup));
      await fs.rename(path.join(folder, backup), doomed);
      await fs.rm(path.join(doomed, "manifest.json"));
    },
  };
}

if (missing) {
  test("sftp destination", { skip: missing }, () => undefined);
} else {
  destinationContract("sftp", fresh);
}

void assert;
void (null as unknown as Destination);
