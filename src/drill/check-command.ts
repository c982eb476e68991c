import { type CommandOutcome, runCommand } from "../platform/shell.ts";

export { describeOutcome } from "../platform/shell.ts";
export type CheckCommandOutcome = CommandOutcome;

/**
 * Run a drill's `check` command on the restored folder: `sh -c CMD` with the folder as `$1`, in
 * `$BSCHED_DRILL_DIR` and as the working directory, never spliced into the command's text (a
 * folder name cannot inject anything). Its own process group, terminated whole on timeout or
 * cancel; its output goes to `log` line by line. The outcome is returned, never thrown.
 */
export function runCheckCommand(
  cmd: string,
  dir: string,
  env: Record<string, string>,
  opts: { timeoutS: number; log: (line: string) => void; signal?: AbortSignal | undefined },
): Promise<CheckCommandOutcome> {
  return runCommand("/bin/sh", ["-c", cmd, "bsched-drill-check", dir], {
    cwd: dir,
    env: { ...process.env, ...env, BSCHED_DRILL_DIR: dir },
    label: "drill check",
    log: opts.log,
    timeoutS: opts.timeoutS,
    signal: opts.signal,
  });
}
