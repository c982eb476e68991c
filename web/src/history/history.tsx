import { useCallback, useEffect, useState } from "react";
import { type RunRecord, routes } from "../api.ts";
import { useLiveEvents } from "../events.ts";
import { Badge } from "../status/status.tsx";
import { ErrorBox } from "../ui/error-box.tsx";
import { bytes, setLabel, when } from "../ui/format.ts";

const RESULTS = ["ok", "warnings", "failed", "missed", "aborted", "interrupted", "running"];

/** The ISO instant of the start of a day (`since`) or of the day after it (`until`), in this browser's zone. */
function dayBound(day: string, end: boolean): string | undefined {
  if (day === "") return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (Number.isNaN(d.getTime())) return undefined;
  if (end) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

/** Past runs, newest first, filtered by set, result and period; each with its warnings and error's code and hint. */
export function History({ sets }: { sets: string[] }) {
  const [set, setSet] = useState("");
  const [result, setResult] = useState("");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const [rows, setRows] = useState<RunRecord[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      setRows(
        await routes.history({
          set,
          result,
          ...(dayBound(since, false) ? { since: dayBound(since, false) } : {}),
          ...(dayBound(until, true) ? { until: dayBound(until, true) } : {}),
          limit: 200,
        }),
      );
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, [set, result, since, until]);

  useEffect(() => {
    void load();
  }, [load]);
  useLiveEvents((e) => {
    if (e.type === "run") void load();
  });

  return (
    <div className="window">
      <div className="title-bar">History</div>
      <div className="window-body">
        <div className="filters">
          <label>
            Set{" "}
            <select value={set} onChange={(e) => setSet(e.target.value)} aria-label="Set">
              <option value="">All</option>
              {sets.map((s) => (
                <option key={s} value={s}>
                  {setLabel(s)}
                </option>
              ))}
            </select>
          </label>
          <label>
            Result{" "}
            <select value={result} onChange={(e) => setResult(e.target.value)} aria-label="Result">
              <option value="">All</option>
              {RESULTS.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </label>
          <label>
            From{" "}
            <input type="date" value={since} onChange={(e) => setSince(e.target.value)} aria-label="From" />
          </label>
          <label>
            To <input type="date" value={until} onChange={(e) => setUntil(e.target.value)} aria-label="To" />
          </label>
          <button type="button" className="small" onClick={() => void load()}>
            Refresh
          </button>
        </div>
        {error ? <ErrorBox error={error} /> : null}
        {rows === null ? (
          <div className="muted">Loading…</div>
        ) : rows.length === 0 ? (
          <p className="muted">No runs match.</p>
        ) : (
          <table className="grid history-table">
            <thead>
              <tr>
                <th>Started</th>
                <th>Set</th>
                <th>Trigger</th>
                <th>Result</th>
                <th>Backup</th>
                <th className="num">Files</th>
                <th className="num">Size</th>
                <th>Details</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.id} data-run={r.id} data-status={r.status}>
                  <td>{when(r.startedAt ?? r.planned)}</td>
                  <td>{setLabel(r.set)}</td>
                  <td>{r.trigger}</td>
                  <td>
                    <Badge status={r.status} />
                  </td>
                  <td className="path">{r.backup ?? "—"}</td>
                  <td className="num">{r.files}</td>
                  <td className="num">{bytes(r.bytes)}</td>
                  <td>
                    {r.warnings > 0 && r.warningList ? (
                      <ul className="warnings">
                        {r.warningList.map((w) => (
                          <li key={`${w.code}:${w.path}`}>
                            <code>{w.code}</code> {w.path}: {w.message}
                          </li>
                        ))}
                      </ul>
                    ) : r.warnings > 0 ? (
                      <div className="warn small">
                        {r.warnings} warning{r.warnings === 1 ? "" : "s"} (bsched list {r.set} shows them)
                      </div>
                    ) : null}
                    {r.error || r.errorCode ? (
                      <ErrorBox
                        error={{ code: r.errorCode ?? undefined, message: r.error ?? "", hint: r.errorHint }}
                      />
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </div>
  );
}
