/**
 * A young-generation collection, asked for by code that streams gigabytes through Node streams
 * (a copy to another destination: every chunk is a fresh Buffer, whose memory lives outside V8's
 * heap). V8 frees those only when it collects their small wrappers, and it waits for tens of
 * megabytes of them first: a 1 GiB stream of 1 MiB chunks peaked at 124 MB of RSS, 75 MB with a
 * minor collection every 16 MiB (~2.5 ms each, ~2 % of the time). The pipelines that read into
 * reused buffers (src/platform/copy.ts) do not need it. `bsched copy` of a 1 GiB file local to
 * local: 109–121 MB peak RSS with it, 159–171 MB without; V8 flags do not replace it
 * (`--max-semi-space-size=1`: 156–160 MB; the wrappers are few, the Buffers' memory is external).
 *
 * `gc` is reached through a flag set at run time and a fresh context (the flag only shows it in
 * contexts made after it: never in bsched's own, nor in child processes), at the first call, so
 * commands that copy nothing do not pay for it (~13 ms, 1 MB); where that fails, this does nothing
 * and memory is only less tight.
 */
let minor: (() => void) | undefined;
export function collectYoung(): void {
  minor ??= exposeMinorGc();
  minor();
}

function exposeMinorGc(): () => void {
  try {
    // Loaded here, not imported: node:v8 alone costs a tenth of Node's start-up, which `list`,
    // `status` and `next` (that load this module and copy nothing) need not pay.
    process.getBuiltinModule("node:v8").setFlagsFromString("--expose-gc");
    const gc = process.getBuiltinModule("node:vm").runInNewContext("gc") as
      | ((o?: { type: "minor" | "major" }) => void)
      | undefined;
    if (typeof gc !== "function") return () => undefined;
    return () => gc({ type: "minor" });
  } catch {
    return () => undefined;
  }
}

/** Calls collectYoung once every `every` bytes counted. */
export function youngCollector(every = 16 << 20): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since >= every) {
      since = 0;
      collectYoung();
    }
  };
}
