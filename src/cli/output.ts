import { BschedError, EXIT } from "../core/errors.ts";
import type { Warning } from "../core/types.ts";

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
export function reportError(e: unknown, json: boolean): number {
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
  if (json) printJson({ error: { code: err?.code ?? "INTERNAL", message: msg, hint: null } });
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
