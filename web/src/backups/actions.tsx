import { useState } from "react";
import { type PrunePreview as Preview, routes } from "../api.ts";
import { useRun } from "../events.ts";
import { ErrorBox } from "../ui/error-box.tsx";
import { bytes } from "../ui/format.ts";
import { RunProgress } from "../ui/run-progress.tsx";

/** Verify a backup (its chain's stored files re-read and re-hashed) as a run: progress, then every problem named. */
export function VerifyRun({ set, backup, dest }: { set: string; backup: string; dest: string | undefined }) {
  const [runId, setRunId] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const run = useRun(runId);
  const r = run.result as
    | { files?: number; bytes?: number; problems?: { backup: string; path?: string; problem: string }[] }
    | undefined;
  async function start() {
    setError(null);
    try {
      setRunId((await routes.verify(set, { backup, ...(dest ? { dest } : {}) })).id);
    } catch (e) {
      setError(e);
    }
  }
  return (
    <div className="verify">
      <button type="button" onClick={() => void start()} disabled={runId !== null && !run.ended}>
        Verify
      </button>
      <ErrorBox error={error} />
      {runId ? <RunProgress runId={runId} run={run} label={`Verify of ${backup}`} /> : null}
      {run.ended && r ? (
        (r.problems?.length ?? 0) === 0 ? (
          <div className="ok" role="status">
            Verified: {r.files} files, {bytes(r.bytes)}, every one as its manifest says.
          </div>
        ) : (
          <div className="error-box" role="alert">
            Damage found:
            <ul>
              {r.problems?.map((p) => (
                <li key={`${p.backup}/${p.path ?? ""}`}>
                  {p.backup}
                  {p.path ? `/${p.path}` : ""}: {p.problem}
                </li>
              ))}
            </ul>
          </div>
        )
      ) : null}
    </div>
  );
}

/** What the keep policy would delete now, and why each other backup is kept. Deletes nothing. */
export function PrunePreview({ set, dest }: { set: string; dest: string | undefined }) {
  const [preview, setPreview] = useState<Preview | null>(null);
  const [error, setError] = useState<unknown>(null);
  async function load() {
    setError(null);
    try {
      setPreview(await routes.prunePreview(set, dest));
    } catch (e) {
      setError(e);
    }
  }
  return (
    <div className="prune">
      <button type="button" onClick={() => void load()}>
        Prune preview
      </button>
      <ErrorBox error={error} />
      {preview ? (
        <div className="prune-lists">
          {preview.policy === null ? (
            <div className="muted span2">This set has no keep policy: every backup is kept.</div>
          ) : null}
          <div>
            <h4>Would delete ({preview.delete.length})</h4>
            {preview.delete.length === 0 ? (
              <div className="muted">Nothing.</div>
            ) : (
              <ul>
                {preview.delete.map((d) => (
                  <li key={d.name} className="bad">
                    {d.name} {d.why ? <span className="muted">— {d.why}</span> : null}
                  </li>
                ))}
              </ul>
            )}
          </div>
          <div>
            <h4>Kept ({preview.keep.length})</h4>
            <ul>
              {preview.keep.map((d) => (
                <li key={d.name}>
                  {d.name} {d.why ? <span className="muted">— {d.why}</span> : null}
                </li>
              ))}
            </ul>
            {preview.broken.length > 0 ? (
              <>
                <h4>Cannot be restored ({preview.broken.length})</h4>
                <ul>
                  {preview.broken.map((d) => (
                    <li key={d.name} className="bad">
                      {d.name} {d.why ? <span className="muted">— {d.why}</span> : null}
                    </li>
                  ))}
                </ul>
              </>
            ) : null}
          </div>
        </div>
      ) : null}
    </div>
  );
}
