import { BschedError } from "./errors.ts";

/**
 * A run stopped on request (Ctrl-C, a cancel from the run registry): what it leaves is what a
 * crash leaves (docs/design.md "Runs and cancellation"), and it fails with this error (exit 1).
 */
export function cancelledError(doing: string): BschedError {
  return new BschedError("CANCELLED", `${doing} was cancelled`, {
    hint: "run it again when you want it: the cancelled run removed its temporary folder and released its locks",
  });
}

/**
 * Stop here when the run's signal fired: the pipelines call it between files, between chunks of
 * a file and before they publish, so a cancel stops within a chunk (1 MiB), never a whole file.
 */
export function throwIfCancelled(signal: AbortSignal | undefined, doing: string): void {
  if (signal?.aborted) throw cancelledError(doing);
}

/** The error of a run that was cancelled: the signal fired, whatever a layer below made of it. */
export function cancelledOr(signal: AbortSignal | undefined, e: unknown, doing: string): unknown {
  return signal?.aborted && !(e instanceof BschedError && e.code === "CANCELLED") ? cancelledError(doing) : e;
}
