import { pino } from "pino";

const HIDDEN = new Set(["level", "time", "pid", "hostname", "msg", "runId"]);

/** One daemon log record as a line for people watching the demo. */
export function humanLine(rec: Record<string, unknown>): string {
  const at = typeof rec.time === "string" ? rec.time.slice(11, 19) : new Date().toISOString().slice(11, 19);
  if (rec.msg === "backup finished") {
    const mb = (Number(rec.bytes) / 1e6).toFixed(2);
    const after = rec.parent ? `, after ${rec.parent}` : "";
    return `[${at}] backup ${rec.set}: ${rec.backup} (${rec.mode} ${rec.type}${after}): ${rec.files} files, ${mb} MB, stored ${rec.storedFiles} → ${rec.path}`;
  }
  const rest = Object.entries(rec)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  const level =
    typeof rec.level === "number" && rec.level >= 40 ? (rec.level >= 50 ? "ERROR " : "warning: ") : "";
  return `[${at}] ${level}${rec.msg}${rest ? `: ${rest}` : ""}`;
}

/** A pino logger whose records are printed as human lines through `say` (the demo's terminal). */
export function humanLog(say: (line: string) => void) {
  return pino(
    { base: {}, timestamp: pino.stdTimeFunctions.isoTime },
    {
      write(line: string) {
        try {
          say(humanLine(JSON.parse(line)));
        } catch {
          say(line.trimEnd());
        }
      },
    },
  );
}
