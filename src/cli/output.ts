import { BschedError, EXIT } from "../core/errors.ts";
import type { Warning } from "../core/types.ts";
import { fromOsError } from "../platform/os-errors.ts";

/**
 * A reader that went away (`bsched status | head -1`) ends our output, not the command: from the
 * first EPIPE on stdout or stderr, further writes to that stream are dropped silently and the
 * command finishes as it would have (a backup still completes and is recorded; `list` exits 0).
 * Node ignores SIGPIPE, so without this the write error would surface as an unhandled 'error'
 * event with a stack trace and exit 1. Installed once, by main(); covers async write errors too.
 */
export function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  let closed = false;
  const write = stream.write.bind(stream);
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE" || e.code === "ERR_STREAM_DESTROYED") {
      closed = true;
      return;
    }
    throw e;
  });
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (closed) {
      // Honour the callback contract so callers waiting on it do not hang.
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      if (cb) process.nextTick(cb);
      return true;
    }
    return (write as (c: unknown, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof stream.write;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printWarning(w: Warning): void {
  process.stderr.write(`bsched: warning: ${w.path}: ${w.message} [${w.code}]\n`);
}

/** Progress, notes and errors for a person: stderr, so they never mix with the results. */
export function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** A command's result for a person: stdout, so `bsched verify data > report.txt` keeps the report. */
export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Print an error for a person (stderr) or a machine (`--json`: on stdout too); return the exit code. */
export function reportError(thrown: unknown, json: boolean): number {
  // An operating-system error that got this far still gets a bsched code, its path and a hint.
  const e = fromOsError(thrown);
  if (e instanceof BschedError) {
    process.stderr.write(`bsched: error: ${e.message}\n`);
    if (e.hint) process.stderr.write(`  hint: ${e.hint}\n`);
    if (json) printJson({ error: { code: e.code, message: e.message, hint: e.hint ?? null } });
    return e.exitCode;
  }
  const err = e as NodeJS.ErrnoException;
  const msg = err?.message ?? String(e);
  process.stderr.write(`bsched: error: ${msg}\n`);
  if (process.env.BSCHED_DEBUG && err?.stack) process.stderr.write(`${err.stack}\n`);
  const hint = "an unexpected failure: run again with BSCHED_DEBUG=1 to see where, and report it";
  process.stderr.write(`  hint: ${hint}\n`);
  if (json) printJson({ error: { code: "INTERNAL", message: msg, hint } });
  return EXIT.failed;
}

export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}
