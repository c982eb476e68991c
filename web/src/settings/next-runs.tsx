import { useEffect, useState } from "react";
import { ApiError, type FieldError, type PlannedRun, routes, type SetSettings } from "../api.ts";
import { when } from "../ui/format.ts";

/**
 * The next three run times these settings would give, asked of the daemon as the user edits
 * (POST /api/settings/next: the schedule code of `bsched next`), never computed here.
 */
export function NextRuns({
  setId,
  settings,
  timezone,
  onFieldErrors,
}: {
  setId: string;
  settings: SetSettings;
  timezone: string;
  onFieldErrors: (errors: FieldError[]) => void;
}) {
  const [runs, setRuns] = useState<PlannedRun[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const key = JSON.stringify(settings);
  const onDemand = !settings.automatic || settings.frequency === "now";
  useEffect(() => {
    if (onDemand) {
      setRuns([]);
      onFieldErrors([]);
      return;
    }
    let stale = false;
    const t = setTimeout(() => {
      routes
        .nextRuns(setId, JSON.parse(key) as SetSettings)
        .then((r) => {
          if (stale) return;
          setRuns(r.slice(0, 3));
          setError(null);
          onFieldErrors([]);
        })
        .catch((e: unknown) => {
          if (stale) return;
          setRuns(null);
          if (e instanceof ApiError && e.fields.length > 0) {
            setError("—");
            onFieldErrors(e.fields);
          } else setError(e instanceof Error ? e.message : String(e));
        });
    }, 250);
    return () => {
      stale = true;
      clearTimeout(t);
    };
  }, [setId, key, onDemand, onFieldErrors]);

  return (
    <div className="next-runs" aria-live="polite">
      <div className="field-label">Next runs</div>
      {onDemand ? (
        <div className="muted">On demand only (Back up now on the Status screen)</div>
      ) : error ? (
        <div className="muted">{error === "—" ? "— (correct the settings above)" : error}</div>
      ) : runs === null ? (
        <div className="muted">…</div>
      ) : (
        <ol className="next-list">
          {runs.map((r) => (
            <li key={r.at} data-iso={r.at}>
              {when(r.at, timezone || undefined)}
              {r.mode ? <span className="muted"> — {r.mode}</span> : null}
            </li>
          ))}
        </ol>
      )}
      {timezone ? <div className="field-note">Time zone {timezone}</div> : null}
    </div>
  );
}
