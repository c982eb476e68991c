// A daemon process for the tests that need a real one on a shifted clock (a slot a few seconds
// ahead, or days behind, however slowly the process starts): the same process wrapper as
// `bsched daemon` (src/daemon/process.ts: signals, exit codes, the service), with the clock
// injected here instead of read from a test hook inside src/.
//
//   node test/helpers/daemon-child.ts CONFIG CLOCK-START-ISO [STOP-TIMEOUT-SECONDS]
import { destination, pino } from "pino";
import { runDaemon } from "../../src/daemon/process.ts";
import type { Clock } from "../../src/platform/clock.ts";

const [configFile, start, stopTimeout] = process.argv.slice(2);
const at = Date.parse(start ?? "");
if (!configFile || Number.isNaN(at)) {
  process.stderr.write("usage: daemon-child.ts CONFIG CLOCK-START-ISO [STOP-TIMEOUT-SECONDS]\n");
  process.exit(2);
}
// The clock starts at `at` when this process starts and runs at real speed.
const t0 = performance.now();
const clock: Clock = { now: () => new Date(at + Math.round(performance.now() - t0)) };
const log = pino(
  { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
  destination({ dest: 2, sync: true }),
);
try {
  process.exitCode = await runDaemon({
    configFile,
    clock,
    log,
    stopGraceMs: Number(stopTimeout ?? 300) * 1000,
    // No window: these tests are about the schedule, and parallel daemons must not race for 8420.
    web: { enabled: false },
  });
} catch (e) {
  process.stderr.write(`bsched: error: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
