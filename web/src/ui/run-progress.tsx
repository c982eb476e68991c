import { type Progress, routes } from "../api.ts";
import type { WatchedRun } from "../events.ts";
import { ErrorBox } from "./error-box.tsx";
import { bytes, duration, rate } from "./format.ts";

const PHASES: Record<Progress["phase"], string> = {
  scan: "Scanning",
  copy: "Copying",
  verify: "Verifying",
  restore: "Restoring",
  publish: "Publishing",
  done: "Done",
};

/** A run's live progress bar: files, bytes, rate, time left, current file; and a Cancel button. */
export function RunProgress({ runId, run, label }: { runId: string; run: WatchedRun; label: string }) {
  const p = run.progress;
  const fraction =
    p && p.totalBytes > 0
      ? Math.min(1, p.bytes / p.totalBytes)
      : p && p.totalFiles > 0
        ? p.files / p.totalFiles
        : 0;
  const eta = p?.rate && p.rate > 0 && p.totalBytes > p.bytes ? (p.totalBytes - p.bytes) / p.rate : undefined;
  return (
    <div className="run-progress" data-run={runId} data-ended={run.ended ? "yes" : "no"}>
      <div className="run-head">
        <strong>{label}</strong>
        <span className="run-phase">
          {run.ended ? (run.error ? "Failed" : "Finished") : p ? PHASES[p.phase] : "Starting…"}
        </span>
        {run.ended ? null : (
          <button
            type="button"
            className="small"
            onClick={() => void routes.cancel(runId).catch(() => undefined)}
          >
            Cancel
          </button>
        )}
      </div>
      <div
        className="bar"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round((run.ended && !run.error ? 1 : fraction) * 100)}
      >
        <div className="bar-fill" style={{ width: `${(run.ended && !run.error ? 1 : fraction) * 100}%` }} />
      </div>
      {p ? (
        <div className="run-figures">
          <span className="run-files">
            {p.files} / {p.totalFiles} files
          </span>
          <span>
            {bytes(p.bytes)} / {bytes(p.totalBytes)}
          </span>
          <span>{rate(p.rate)}</span>
          {!run.ended && eta !== undefined ? <span>about {duration(eta)} left</span> : null}
          {p.destination ? <span>to {p.destination}</span> : null}
          {p.current && !run.ended ? (
            <span className="run-current" title={p.current}>
              {p.current}
            </span>
          ) : null}
        </div>
      ) : null}
      {run.warnings.length > 0 ? (
        <ul className="warnings">
          {run.warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      ) : null}
      {run.error ? <ErrorBox error={run.error} /> : null}
    </div>
  );
}
