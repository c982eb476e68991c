/**
 * A real `bsched copy` stopped dead mid-copy, for the crash test of copies: `node
 * test/helpers/paused-copy.ts CONFIG SET FILES` runs the operations layer's copyNow (the CLI's
 * own path: the destination's lock, its staging area) with a progress sink that, once FILES
 * files have been started on a destination, writes PAUSED_LINE to stderr and blocks the thread
 * for good, so the test can kill it (SIGKILL) with a staging area half written.
 */
import { getSet, loadConfig } from "../../src/config/load.ts";
import { copyNow } from "../../src/ops/copy.ts";
import { systemClock } from "../../src/platform/clock.ts";
import { PAUSED_LINE } from "./paused-backup.ts";

async function main(): Promise<void> {
  const [configFile, setId, files] = process.argv.slice(2);
  if (configFile === undefined || setId === undefined || !/^\d+$/.test(files ?? "")) {
    throw new Error("usage: paused-copy.ts CONFIG SET FILES");
  }
  const config = loadConfig(configFile, () => undefined);
  await copyNow(
    {
      config,
      clock: systemClock,
      progress: (e) => {
        const p = e.kind === "progress" ? e.progress : undefined;
        if (p?.destination === undefined || p.phase !== "copy" || p.files !== Number(files)) return;
        process.stderr.write(PAUSED_LINE);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      },
    },
    { set: getSet(config, setId) },
  );
  throw new Error(`the copy ended before starting ${files} files`);
}

if (process.argv[1] === import.meta.filename) {
  main().catch((e: unknown) => {
    process.stderr.write(`paused-copy: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
