import type { Progress, ProgressCallback } from "../core/types.ts";
import { formatBytes } from "./output.ts";

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * One status line: files, bytes, rate and ETA. Pure, for tests. The rate is the event's own (by
 * the run's clock); `elapsedSeconds` of the phase gives one for an event without it.
 */
export function progressLine(p: Progress, elapsedSeconds: number): string {
  if (p.phase === "scan") return `scanning: ${p.files.toLocaleString("en-US")} entries`;
  const rate = p.rate ?? (elapsedSeconds > 0 ? p.bytes / elapsedSeconds : 0);
  const eta = rate > 0 ? (p.totalBytes - p.bytes) / rate : Number.NaN;
  const pct = p.totalBytes > 0 ? Math.floor((100 * p.bytes) / p.totalBytes) : 100;
  const phase = p.destination === undefined ? p.phase : `${p.phase} to ${p.destination}`;
  return `${phase}: ${p.files.toLocaleString("en-US")}/${p.totalFiles.toLocaleString("en-US")} files  ${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)} (${pct}%)  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}`;
}

/**
 * A progress reporter that redraws one line on stderr at most 10 times a second, only when
 * stderr is a terminal; elsewhere it does nothing, so logs and pipes stay clean.
 */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): {
  onProgress: ProgressCallback;
  end(): void;
} {
  if (!stream.isTTY) return { onProgress: () => undefined, end: () => undefined };
  const start = performance.now();
  let last = 0;
  let drawn = false;
  let phase = "";
  let phaseStart = start;
  return {
    onProgress(p) {
      const now = performance.now();
      if (p.phase !== phase) {
        phase = p.phase;
        phaseStart = now;
      }
      if (p.phase !== "done" && now - last < 100) return;
      last = now;
      const line = progressLine(p, (now - phaseStart) / 1000).slice(0, (stream.columns || 100) - 1);
      stream.write(`\r\x1b[2K${line}`);
      drawn = true;
    },
    end() {
      if (drawn) stream.write("\r\x1b[2K");
    },
  };
}
