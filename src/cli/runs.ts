import type { OpEvent } from "../ops/context.ts";
import { type RunHandle, RunRegistry } from "../ops/runs.ts";
import { systemClock } from "../platform/clock.ts";
import { say } from "./output.ts";
import { terminalProgress } from "./progress.ts";

let registry: RunRegistry | undefined;

/**
 * The CLI process's one run registry (made by the first command that starts a run). Ctrl-C
 * (SIGINT) or SIGTERM cancels its runs through the registry, the path a daemon or an API cancel
 * takes: the run stops within a chunk, removes its temporary folder, releases its locks and fails
 * with CANCELLED (exit 1). A second signal, or one with no run going, ends the process at once
 * as the signal always did (what a crash leaves, cleaned by the next run).
 */
export function cliRuns(): RunRegistry {
  if (registry) return registry;
  const runs = new RunRegistry(systemClock);
  registry = runs;
  let cancelling = false;
  const onSignal = (signal: NodeJS.Signals) => {
    const running = runs.list();
    if (cancelling || running.length === 0) {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.kill(process.pid, signal);
      return;
    }
    cancelling = true;
    const clear = process.stderr.isTTY ? "\r\x1b[2K" : "";
    say(`${clear}bsched: ${signal === "SIGINT" ? "Ctrl-C" : signal}: cancelling (again: stop at once)`);
    for (const r of running) runs.cancel(r.id, `cancelled by ${signal}`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return runs;
}

/**
 * Follow a run of the CLI to its result: the progress bar (on a terminal) subscribes to its
 * progress events, `print` gets the others (warnings, hook output, catalog trouble).
 */
export async function follow<T>(
  run: RunHandle<T>,
  print: (e: OpEvent) => void = () => undefined,
): Promise<T> {
  const bar = terminalProgress();
  run.subscribe((e) => {
    if (e.kind === "progress") return bar.onProgress(e.progress);
    bar.end();
    print(e);
  });
  try {
    return await run.result;
  } finally {
    bar.end();
  }
}
