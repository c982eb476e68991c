import type { ExitBox } from "./main.ts";
import { reportError } from "./output.ts";

/** Wrap a command body: its result is the exit code; errors are printed, never thrown. */
export function action<A extends unknown[]>(exit: ExitBox, body: (...args: A) => Promise<number>) {
  return async (...args: A): Promise<void> => {
    const opts = args.find((a) => a !== null && typeof a === "object" && !Array.isArray(a)) as
      | { json?: boolean }
      | undefined;
    try {
      exit.code = await body(...args);
    } catch (e) {
      exit.code = reportError(e, opts?.json === true);
    }
  };
}
