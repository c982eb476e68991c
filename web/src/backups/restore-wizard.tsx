import { useEffect, useState } from "react";
import { type Backup, type RestoreBody, type RestorePlan, routes } from "../api.ts";
import { useRun } from "../events.ts";
import { ErrorBox } from "../ui/error-box.tsx";
import { Field } from "../ui/field.tsx";
import { bytes, when } from "../ui/format.ts";
import { RunProgress } from "../ui/run-progress.tsx";

/** A new folder beside the backup folder, named after the backup: never an existing one by default. */
export function defaultTarget(b: Backup, root: string | undefined): string {
  const base = root ?? (b.path.startsWith("/") ? b.path.split("/").slice(0, -2).join("/") : "");
  return `${base || ""}/Restore/${b.name}`;
}

/**
 * The restore wizard: the point (a backup; its chain is applied up to it), all or some paths, the
 * target (a new folder by default; writing into a folder that holds files needs an explicit
 * confirmation), then the run's live progress and its result, every file checked against its hash.
 */
export function RestoreWizard({
  set,
  dest,
  backups,
  initial,
  picked,
  root,
  onClose,
}: {
  set: string;
  dest: string | undefined;
  backups: Backup[];
  initial: string;
  picked: string[];
  root: string | undefined;
  onClose: () => void;
}) {
  const restorable = backups.filter((b) => b.state !== "broken");
  const [name, setName] = useState(initial);
  const point = backups.find((b) => b.name === name);
  const [some, setSome] = useState(picked.length > 0);
  const [paths, setPaths] = useState(picked.join("\n"));
  const [to, setTo] = useState(point ? defaultTarget(point, root) : "");
  const [overwrite, setOverwrite] = useState(false);
  const [confirmed, setConfirmed] = useState(false);
  const [runId, setRunId] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [plan, setPlan] = useState<RestorePlan | null>(null);
  const [planError, setPlanError] = useState<unknown>(null);
  const run = useRun(runId);

  const body = (): RestoreBody => {
    const list = paths
      .split("\n")
      .map((p) => p.trim())
      .filter((p) => p !== "");
    return {
      backup: name,
      ...(dest ? { dest } : {}),
      to: to.trim(),
      ...(some && list.length > 0 ? { paths: list } : {}),
      ...(overwrite ? { overwrite: true } : {}),
    };
  };
  const key = JSON.stringify(body());

  // What the restore would do to the target, asked as the choices change (nothing is written).
  useEffect(() => {
    const b = JSON.parse(key) as RestoreBody;
    if (b.to === "") return;
    let stale = false;
    const t = setTimeout(() => {
      routes
        .restorePlan(set, b)
        .then((p) => {
          if (stale) return;
          setPlan(p);
          setPlanError(null);
        })
        .catch((e: unknown) => {
          if (stale) return;
          setPlan(null);
          setPlanError(e);
        });
    }, 300);
    return () => {
      stale = true;
      clearTimeout(t);
    };
  }, [set, key]);

  async function start() {
    setError(null);
    try {
      const b = body();
      const info = await routes.restore(set, {
        ...b,
        ...(overwrite && confirmed ? {} : { overwrite: undefined }),
      });
      setRunId(info.id);
    } catch (e) {
      setError(e);
    }
  }

  const result = run.result as
    | { files?: number; bytes?: number; dirs?: number; verified?: number; problems?: unknown[] }
    | undefined;
  const allChecked =
    result?.verified !== undefined ? result.verified === result.files : (result?.problems?.length ?? 0) === 0;
  return (
    <section className="window wizard" aria-label="Restore">
      <div className="title-bar">Restore {set}</div>
      <div className="window-body">
        {runId === null ? (
          <>
            <fieldset className="group">
              <legend>1. Restore point</legend>
              <Field
                label="Backup"
                htmlFor="rw-point"
                note="Its chain (the full backup and the incrementals up to it) is applied in order."
              >
                <select
                  id="rw-point"
                  value={name}
                  onChange={(e) => {
                    setName(e.target.value);
                    const b = backups.find((x) => x.name === e.target.value);
                    if (b) setTo(defaultTarget(b, root));
                  }}
                >
                  {restorable.map((b) => (
                    <option key={b.name} value={b.name}>
                      {b.name} — {when(b.startedAt)} ({b.mode})
                    </option>
                  ))}
                </select>
              </Field>
            </fieldset>
            <fieldset className="group">
              <legend>2. What</legend>
              <label className="check">
                <input type="radio" name="rw-what" checked={!some} onChange={() => setSome(false)} />
                Everything
              </label>
              <label className="check">
                <input type="radio" name="rw-what" checked={some} onChange={() => setSome(true)} />
                Only these paths (one a line; a folder brings what it holds)
              </label>
              {some ? (
                <textarea
                  aria-label="Paths"
                  rows={4}
                  value={paths}
                  onChange={(e) => setPaths(e.target.value)}
                  placeholder="db/cardholders.sqlite"
                />
              ) : null}
            </fieldset>
            <fieldset className="group">
              <legend>3. Where</legend>
              <Field
                label="Restore into"
                htmlFor="rw-to"
                note="A new folder is created; the backup itself is never changed."
              >
                <input id="rw-to" className="wide" value={to} onChange={(e) => setTo(e.target.value)} />
              </Field>
              <label className="check">
                <input
                  type="checkbox"
                  checked={overwrite}
                  onChange={(e) => {
                    setOverwrite(e.target.checked);
                    setConfirmed(false);
                  }}
                />
                The folder exists and holds files: write into it
              </label>
              {overwrite ? (
                <label className="check danger">
                  <input
                    type="checkbox"
                    checked={confirmed}
                    onChange={(e) => setConfirmed(e.target.checked)}
                  />
                  Yes, replace the files of {to || "this folder"} with the backup's
                </label>
              ) : null}
              {plan ? (
                <div className="plan muted small" data-plan="ok">
                  {plan.note}
                  {plan.sample.length > 0
                    ? ` (${plan.sample.slice(0, 5).join(", ")}${plan.replaces > 5 ? ", …" : ""})`
                    : ""}
                </div>
              ) : planError ? (
                <ErrorBox error={planError} />
              ) : null}
            </fieldset>
            <ErrorBox error={error} />
            <div className="buttons">
              <button
                type="button"
                className="primary"
                disabled={to.trim() === "" || !point || (overwrite && !confirmed)}
                onClick={() => void start()}
              >
                Restore
              </button>
              <button type="button" onClick={onClose}>
                Cancel
              </button>
            </div>
          </>
        ) : (
          <>
            <RunProgress runId={runId} run={run} label={`Restore of ${name} into ${to}`} />
            {run.ended && !run.error ? (
              <div className="result ok" role="status" data-result="restored">
                Restored {result?.files ?? "?"} files ({bytes(result?.bytes)}) into <code>{to}</code>
                {allChecked
                  ? ": every file checked against its hash."
                  : `; ${result?.verified ?? "?"} of them checked against their hash.`}
              </div>
            ) : null}
            <div className="buttons">
              <button type="button" onClick={onClose} disabled={!run.ended}>
                Close
              </button>
            </div>
          </>
        )}
      </div>
    </section>
  );
}
