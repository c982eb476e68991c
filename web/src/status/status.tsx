import { useCallback, useEffect, useState } from "react";
import { type DrillStatus, type RunInfo, routes, type SetStatus, type Status as StatusData } from "../api.ts";
import { useLiveEvents, useRun } from "../events.ts";
import { ErrorBox } from "../ui/error-box.tsx";
import { bySeedOrder, bytes, setLabel, when } from "../ui/format.ts";
import { RunProgress } from "../ui/run-progress.tsx";

const RESULT: Record<string, string> = {
  ok: "OK",
  warnings: "Warnings",
  failed: "Failed",
  missed: "Missed",
  aborted: "Aborted",
  interrupted: "Interrupted",
  running: "Running",
};

export function Badge({ status }: { status: string }) {
  return <span className={`badge badge-${status}`}>{RESULT[status] ?? status}</span>;
}

/** Per set: last and next run, backups, copies; the daemon's health; Back up now with live progress. */
export function Status() {
  const [data, setData] = useState<StatusData | null>(null);
  const [runs, setRuns] = useState<RunInfo[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [startError, setStartError] = useState<Record<string, unknown>>({});

  const load = useCallback(async () => {
    try {
      const [s, r] = await Promise.all([routes.status(), routes.runs().catch(() => [] as RunInfo[])]);
      setData(s);
      setRuns((old) => {
        // Keep a run this window started until its end was seen (the list drops it at once).
        const ids = new Set(r.map((x) => x.id));
        return [...r, ...old.filter((o) => !ids.has(o.id) && watched.has(o.id))];
      });
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, []);

  useEffect(() => {
    void load();
    const t = setInterval(() => void load(), 15_000);
    return () => clearInterval(t);
  }, [load]);

  useLiveEvents((e) => {
    if (e.type === "run" || e.type === "config") void load();
  });

  async function backupNow(set: string) {
    setStartError((s) => ({ ...s, [set]: null }));
    try {
      const info = await routes.backupNow(set);
      watched.add(info.id);
      setRuns((r) => [...r.filter((x) => x.id !== info.id), info]);
    } catch (e) {
      setStartError((s) => ({ ...s, [set]: e }));
    }
  }

  if (!data) return error ? <ErrorBox error={error} /> : <div className="muted">Loading…</div>;
  const d = data.daemon;
  return (
    <div className="stack">
      <div className="window">
        <div className="title-bar">Status</div>
        <div className="window-body">
          <div className="health" data-daemon={d.running ? "running" : "stopped"}>
            {d.running ? (
              <>
                <span className="dot ok" /> Daemon running (pid {d.pid} on {d.host}, since {when(d.since)})
              </>
            ) : (
              <>
                <span className="dot bad" /> No daemon holds the state folder: scheduled backups do not run.
                Start it with <code>bsched daemon</code>.
              </>
            )}
          </div>
          {error ? <ErrorBox error={error} /> : null}
          <table className="grid status-table">
            <thead>
              <tr>
                <th>Set</th>
                <th>Last run</th>
                <th>Next run</th>
                <th>Backups</th>
                <th>Copies</th>
                <th>Proven restorable</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {bySeedOrder(data.sets, (s) => s.set).map((s) => (
                <SetRow
                  key={s.set}
                  s={s}
                  runs={runs.filter((r) => r.set === s.set)}
                  onBackup={() => void backupNow(s.set)}
                  startError={startError[s.set]}
                  onEnded={(id, failed) => {
                    void load();
                    // A success stays shown a moment; a failure until the page is left.
                    if (!failed)
                      setTimeout(() => {
                        watched.delete(id);
                        void load();
                      }, 4_000);
                  }}
                />
              ))}
            </tbody>
          </table>
        </div>
      </div>
    </div>
  );
}

/** Runs this window started and still shows (the registry forgets a run as soon as it ends). */
const watched = new Set<string>();

function SetRow({
  s,
  runs,
  onBackup,
  startError,
  onEnded,
}: {
  s: SetStatus;
  runs: RunInfo[];
  onBackup: () => void;
  startError: unknown;
  onEnded: (id: string, failed: boolean) => void;
}) {
  const last = s.lastRun;
  const busy = runs.some((r) => r.kind === "backup" && !ended.has(r.id));
  return (
    <>
      <tr data-set={s.set}>
        <td>
          <strong>{setLabel(s.set)}</strong>
          <div className="muted small">
            {s.automatic && s.schedule.frequency !== "now"
              ? `${s.schedule.frequency}${s.schedule.day !== null ? ` ${s.schedule.day}` : ""} at ${s.schedule.time}`
              : "on demand"}
            , {s.mode}
          </div>
        </td>
        <td>
          {last ? (
            <>
              <Badge status={last.status} /> {when(last.finishedAt ?? last.startedAt)}
              {last.backup ? <div className="muted small">{last.backup}</div> : null}
              {last.errorCode || last.error ? (
                <ErrorBox
                  error={{
                    code: last.errorCode ?? undefined,
                    message: last.error ?? "",
                    hint: last.errorHint,
                  }}
                />
              ) : null}
            </>
          ) : (
            <span className="muted">never</span>
          )}
        </td>
        <td>{s.nextRun ? when(s.nextRun, s.schedule.timezone) : <span className="muted">—</span>}</td>
        <td className="backups-cell">
          <span className="count">{s.backups.count}</span> · {bytes(s.backups.diskBytes)}
          {s.backups.broken > 0 ? (
            <div className="bad small">{s.backups.broken} cannot be restored</div>
          ) : null}
          {s.backups.error ? (
            <ErrorBox
              error={{ code: s.backups.errorCode, message: s.backups.error, hint: s.backups.errorHint }}
            />
          ) : null}
        </td>
        <td>
          {s.copies.length === 0 ? (
            <span className="muted">none</span>
          ) : (
            <ul className="copies">
              {s.copies.map((c) => (
                <li key={c.destination} title={c.where}>
                  <strong>{c.destination}</strong>{" "}
                  {c.error ? (
                    <span className="bad">{c.errorCode ?? "unreachable"}</span>
                  ) : c.behind === 0 ? (
                    <span className="ok">up to date</span>
                  ) : c.behind !== null ? (
                    <span className="warn">{c.behind} behind</span>
                  ) : (
                    <span className="muted">unknown</span>
                  )}
                  {c.lastCopy && !c.lastCopy.ok ? (
                    <div className="small bad">
                      {c.lastCopy.code}: {c.lastCopy.message}
                      {c.lastCopy.hint ? <div className="hint">Fix: {c.lastCopy.hint}</div> : null}
                    </div>
                  ) : null}
                  {c.error && c.errorHint ? <div className="small hint">Fix: {c.errorHint}</div> : null}
                </li>
              ))}
            </ul>
          )}
        </td>
        <td className="drills-cell">
          <Drills d={s.drills ?? null} timezone={s.schedule.timezone} />
        </td>
        <td className="actions">
          <button type="button" className="primary" disabled={busy} onClick={onBackup}>
            Back up now
          </button>
        </td>
      </tr>
      {runs.length > 0 || startError ? (
        <tr className="run-row">
          <td colSpan={7}>
            {startError ? <ErrorBox error={startError} title="Back up now" /> : null}
            {runs.map((r) => (
              <LiveRun key={r.id} info={r} onEnded={onEnded} />
            ))}
          </td>
        </tr>
      ) : null}
    </>
  );
}

/** Restore drills: per place, when a backup was last proven restorable and how long its restore took. */
function Drills({ d, timezone }: { d: DrillStatus | null; timezone: string }) {
  if (d === null || d.places.length === 0) return <span className="muted">no drill</span>;
  const secs = (ms: number | null) => (ms === null ? "" : ` · restore ${(ms / 1000).toFixed(1)} s`);
  return (
    <ul className="drills">
      {d.places.map((p) => (
        <li key={p.destination} data-drill={p.destination}>
          <strong>{p.destination}</strong>{" "}
          {p.lastProven ? (
            <span className="ok" title={p.lastProven.backup ?? ""}>
              {when(p.lastProven.at, timezone)}
              {secs(p.lastProven.restoreMs)}
            </span>
          ) : (
            <span className="bad">never proven</span>
          )}
          {p.lastDrill && !p.lastDrill.ok ? (
            <div className="small bad">
              Last drill failed {when(p.lastDrill.at, timezone)}: {p.lastDrill.errorCode}: {p.lastDrill.error}
              {p.lastDrill.errorHint ? <div className="hint">Fix: {p.lastDrill.errorHint}</div> : null}
            </div>
          ) : null}
        </li>
      ))}
      {d.scheduled && d.nextRun ? (
        <li className="muted small">next drill {when(d.nextRun, timezone)}</li>
      ) : null}
    </ul>
  );
}

/** Run ids whose end this window saw. */
const ended = new Set<string>();

function LiveRun({ info, onEnded }: { info: RunInfo; onEnded: (id: string, failed: boolean) => void }) {
  const run = useRun(info.id);
  const failed = run.error !== undefined;
  useEffect(() => {
    if (!run.ended || ended.has(info.id)) return;
    ended.add(info.id);
    onEnded(info.id, failed);
  }, [run.ended, failed, info.id, onEnded]);
  const r = run.result as { backup?: { name?: string }; summary?: { name?: string } } | undefined;
  const name = r?.backup?.name ?? r?.summary?.name;
  return (
    <div>
      <RunProgress
        runId={info.id}
        run={run}
        label={`${info.kind === "backup" ? "Backup" : info.kind} of ${setLabel(info.set ?? "")}`}
      />
      {run.ended && !run.error ? (
        <div className="ok small">{info.kind === "drill" ? "Drill done." : `Backup ${name ?? ""} done.`}</div>
      ) : null}
    </div>
  );
}
