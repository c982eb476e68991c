import type { Ceph } from "./servers/ceph.ts";
import { startSharedCeph } from "./servers/ceph.ts";

/**
 * `npm test`'s global setup (node --test-global-setup): the servers every test file shares,
 * started once per run. Environment variables set here reach the test files' processes (they
 * are spawned after it), which is how they find them (test/helpers/servers/ceph.ts sharedCeph).
 */

let ceph: Ceph | undefined;

export async function globalSetup(): Promise<void> {
  const started = Date.now();
  ceph = await startSharedCeph();
  if (ceph) process.stderr.write(`# Ceph S3 gateway at ${ceph.endpoint}, up in ${Date.now() - started} ms\n`);
}

export async function globalTeardown(): Promise<void> {
  await ceph?.stop();
  ceph = undefined;
}
