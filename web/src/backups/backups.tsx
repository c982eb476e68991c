import { useCallback, useEffect, useState } from "react";
import { type Backup, routes, type Settings } from "../api.ts";
import { useLiveEvents } from "../events.ts";
import { ErrorBox } from "../ui/error-box.tsx";
import { bySeedOrder, bytes, setLabel, when } from "../ui/format.ts";
import { PrunePreview, VerifyRun } from "./actions.tsx";
import { Browse } from "./browse.tsx";
import { RestoreWizard } from "./restore-wizard.tsx";

/**
 * Backups and restore: per set and destination (the set's folder or one of its copies), its
 * backups as a timeline, newest first; one opened shows its files (from its manifest), and leads
 * to the restore wizard, verify and the prune preview.
 */
export function Backups() {
  const [settings, setSettings] = useState<Settings | null>(null);
  const [set, setSet] = useState<string>("");
  const [dest, setDest] = useState<string>("");
  const [backups, setBackups] = useState<Backup[] | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [picked, setPicked] = useState<string[]>([]);
  const [wizard, setWizard] = useState(false);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    routes
      .settings()
      .then((s) => {
        setSettings(s);
        setSet((cur) => cur || (bySeedOrder(s.sets, (x) => x.id)[0]?.id ?? ""));
      })
      .catch(setError);
  }, []);

  const load = useCallback(async () => {
    if (set === "") return;
    try {
      const list = await routes.backups(set, dest || undefined);
      setBackups(list);
      setError(null);
    } catch (e) {
      setBackups([]);
      setError(e);
    }
  }, [set, dest]);

  useEffect(() => {
    setBackups(null);
    setOpen(null);
    setPicked([]);
    setWizard(false);
    void load();
  }, [load]);

  useLiveEvents((e) => {
    if (e.type === "run") void load();
  });

  if (!settings) return error ? <ErrorBox error={error} /> : <div className="muted">Loading…</div>;
  const sets = bySeedOrder(settings.sets, (s) => s.id);
  const copies = settings.sets.find((s) => s.id === set)?.copies ?? [];
  const newestFirst = [...(backups ?? [])].reverse();
  const opened = backups?.find((b) => b.name === open);
  return (
    <div className="stack">
      <div className="window">
        <div className="title-bar">Backups and restore</div>
        <div className="window-body">
          <div className="filters">
            <label>
              Set{" "}
              <select aria-label="Set" value={set} onChange={(e) => setSet(e.target.value)}>
                {sets.map((s) => (
                  <option key={s.id} value={s.id}>
                    {setLabel(s.id)}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Where{" "}
              <select aria-label="Where" value={dest} onChange={(e) => setDest(e.target.value)}>
                <option value="">The set's folder</option>
                {copies.map((c) => (
                  <option key={c} value={c}>
                    Copy on {c}
                  </option>
                ))}
              </select>
            </label>
          </div>
          {error ? <ErrorBox error={error} /> : null}
          <div className="split">
            <ol className="timeline" aria-label="Backups">
              {backups === null ? (
                <li className="muted">Loading…</li>
              ) : newestFirst.length === 0 ? (
                <li className="muted">No backups yet.</li>
              ) : (
                newestFirst.map((b) => (
                  <li key={b.name} data-backup={b.name} className={b.name === open ? "selected" : ""}>
                    <button type="button" className="timeline-item" onClick={() => setOpen(b.name)}>
                      <span
                        className={`mark mark-${b.mode ?? "unknown"}${b.state === "broken" ? " mark-broken" : ""}`}
                      />
                      <span className="tl-when">{when(b.startedAt)}</span>
                      <span className="tl-name">{b.name}</span>
                      <span className="tl-meta">
                        {b.mode} {b.type} · {b.files ?? "?"} files · {bytes(b.diskBytes ?? b.bytes)}
                        {(b.warnings?.length ?? 0) > 0 ? ` · ${b.warnings?.length} warnings` : ""}
                      </span>
                      {b.state === "broken" ? (
                        <span className="bad small">cannot be restored: {b.reason}</span>
                      ) : null}
                    </button>
                  </li>
                ))
              )}
            </ol>
            <div className="detail">
              {opened ? (
                <>
                  <div className="detail-head">
                    <h3>{opened.name}</h3>
                    <div className="buttons left">
                      <button
                        type="button"
                        className="primary"
                        disabled={opened.state === "broken"}
                        onClick={() => setWizard(true)}
                      >
                        Restore…
                      </button>
                      <VerifyRun set={set} backup={opened.name} dest={dest || undefined} />
                    </div>
                  </div>
                  {(opened.warnings?.length ?? 0) > 0 ? (
                    <ul className="warnings">
                      {opened.warnings?.map((w) => (
                        <li key={`${w.code}:${w.path}`}>
                          <code>{w.code}</code> {w.path}: {w.message}
                        </li>
                      ))}
                    </ul>
                  ) : null}
                  {wizard ? (
                    <RestoreWizard
                      set={set}
                      dest={dest || undefined}
                      backups={backups ?? []}
                      initial={opened.name}
                      picked={picked}
                      root={settings.system.root}
                      onClose={() => setWizard(false)}
                    />
                  ) : (
                    <Browse
                      set={set}
                      backup={opened.name}
                      dest={dest || undefined}
                      picked={picked}
                      onPick={setPicked}
                    />
                  )}
                </>
              ) : (
                <p className="muted">Open a backup to see its files, restore or verify it.</p>
              )}
            </div>
          </div>
          <div className="prune-section">
            <PrunePreview key={`${set}/${dest}`} set={set} dest={dest || undefined} />
          </div>
        </div>
      </div>
    </div>
  );
}
