/**
 * The daemon side of `npm run bench:web`: a DaemonService and the window's server (startWeb) in one
 * process, as `bsched daemon` runs them, on the config given. Prints `{"url": …}` on stdout once
 * listening; SIGTERM stops both. Authentication is the daemon's own (sessionAuth): the bench adds a
 * user with `bsched user add` and logs in, so every request pays the session and CSRF checks.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { sessionAuth } from "../src/api/auth/session-auth.ts";
import { startWeb } from "../src/api/web.ts";
import type { Log } from "../src/daemon/scheduler.ts";
import { DaemonService } from "../src/daemon/service.ts";
import { systemClock } from "../src/platform/clock.ts";

const configFile = process.argv[2];
if (!configFile) throw new Error("usage: web-daemon.ts CONFIG");

const log: Log = {
  info() {},
  warn: (o, m) => process.stderr.write(`warn: ${m} ${JSON.stringify(o)}\n`),
  error: (o, m) => process.stderr.write(`error: ${m} ${JSON.stringify(o)}\n`),
};
const service = new DaemonService({ configFile, clock: systemClock, log, watchMs: 0, control: false });
await service.start();
const auth = sessionAuth({ state: service.config.state, clock: systemClock, log, secure: false });
const web = await startWeb({ service, clock: systemClock, log, auth });
process.stdout.write(`${JSON.stringify({ url: web.url })}\n`);
// How long the event loop was held at a time (the backup's own work competes with the requests).
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
process.once("SIGTERM", () => {
  void (async () => {
    loop.disable();
    const ms = (ns: number) => (ns / 1e6).toFixed(1);
    process.stderr.write(
      `${JSON.stringify({ eventLoopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) } })}\n`,
    );
    await web.close();
    await service.stop({ graceMs: 0 });
    process.exit(0);
  })();
});
