/**
 * A real backup process stopped dead at a known point, for the crash, lock and interrupted-run
 * tests: `node test/helpers/paused-backup.ts CONFIG SET FILES` loads the config and runs the
 * operations layer's backupNow (the CLI's own path: catalog record, lock, staging) with a
 * progress sink that, once FILES files are stored, writes PAUSED_LINE to stderr and blocks the
 * thread for good, so the test can kill it (SIGKILL: a crash, a power cut) mid-run. It replaces
 * the BSCHED_TEST_PAUSE_AFTER_FILES hook that production code used to read.
 */
import { getSet, loadConfig } from "../../src/config/load.ts";
import { backupNow } from "../../src/ops/backup-now.ts";
import { systemClock } from "../../src/platform/clock.ts";

export const PAUSED_LINE = "bsched-test: paused\n";

async function main(): Promise<void> {
  const [configFile, setId, files] = process.argv.slice(2);
  if (configFile === undefined || setId === undefined || !/^\d+$/.test(files ?? "")) {
    throw new Error("usage: paused-backup.ts CONFIG SET FILES");
  }
  const config = loadConfig(configFile);
  await backupNow(
    {
      config,
      clock: systemClock,
      progress: (e) => {
        if (e.kind !== "progress" || e.progress.phase !== "copy" || e.progress.files !== Number(files))
          return;
        process.stderr.write(PAUSED_LINE);
        // Block this thread (the event loop with it) until the test kills the process.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      },
    },
    { set: getSet(config, setId) },
  );
  throw new Error(`the backup ended before storing ${files} files`);
}

if (process.argv[1] === import.meta.filename) {
  main().catch((e: unknown) => {
    process.stderr.write(`paused-backup: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
