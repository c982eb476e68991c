import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Ceph } from "./servers/ceph.ts";
import { startSharedCeph } from "./servers/ceph.ts";

/**
 * `npm test`'s global setup (node --test-global-setup): the servers every test file shares,
 * started once per run. Environment variables set here reach the test files' processes (they
 * are spawned after it), which is how they find them (test/helpers/servers/ceph.ts sharedCeph).
 */

let ceph: Ceph | undefined;
let cacheHome: string | undefined;

export async function globalSetup(): Promise<void> {
  // The config check's cache (src/config/cache.ts) of every bsched the tests run: in a folder of
  // this run, not the user's ~/.cache.
  cacheHome = mkdtempSync(path.join(os.tmpdir(), "bsched-test-cache-"));
  process.env.XDG_CACHE_HOME = cacheHome;
  const started = Date.now();
  try {
    ceph = await startSharedCeph();
    if (ceph)
      process.stderr.write(`# Ceph S3 gateway at ${ceph.endpoint}, up in ${Date.now() - started} ms\n`);
  } catch (e) {
    // Only the S3 tests need it: they try again on their own and fail with this same reason,
    // instead of the whole run stopping here.
    process.stderr.write(`# the shared Ceph did not start: ${(e as Error).message}\n`);
  }
}

export async function globalTeardown(): Promise<void> {
  await ceph?.stop();
  ceph = undefined;
  if (cacheHome !== undefined) rmSync(cacheHome, { recursive: true, force: true });
}
