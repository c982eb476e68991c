import { useCallback, useEffect, useState } from "react";
import { ApiError, type FieldError, routes, type Settings as SettingsData } from "../api.ts";
import { useLiveEvents } from "../events.ts";
import { ErrorBox } from "../ui/error-box.tsx";
import { bySeedOrder, setLabel } from "../ui/format.ts";
import { changes, fromSettings, type SetForm, toSettings } from "./form.ts";
import { NewSet } from "./new-set.tsx";
import { SetTab } from "./set-tab.tsx";

/** The tab that adds a set. */
const NEW = "\u0000new";

/**
 * The seed's Backup Scheduler window: one tab per set. OK writes every changed tab (only the keys
 * that changed, each tab's errors shown beside its fields; the config's hash goes with each write,
 * so someone else's edit of bsched.yaml meanwhile is never overwritten); Cancel discards.
 */
export function Settings({ onConfigChanged }: { onConfigChanged: (changed: boolean) => void }) {
  const [data, setData] = useState<SettingsData | null>(null);
  const [forms, setForms] = useState<Record<string, SetForm>>({});
  const [tab, setTab] = useState<string | null>(null);
  const [errors, setErrors] = useState<Record<string, FieldError[]>>({});
  const [live, setLive] = useState<Record<string, FieldError[]>>({});
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [stale, setStale] = useState(false);

  const load = useCallback(async () => {
    try {
      const d = await routes.settings();
      setData(d);
      setForms(Object.fromEntries(d.sets.map((s) => [s.id, fromSettings(s)])));
      setErrors({});
      setError(null);
      setStale(false);
      onConfigChanged(false);
      setTab((t) =>
        t !== null && d.sets.some((s) => s.id === t) ? t : (bySeedOrder(d.sets, (s) => s.id)[0]?.id ?? null),
      );
    } catch (e) {
      setError(e);
    }
  }, [onConfigChanged]);

  useEffect(() => {
    void load();
  }, [load]);

  const dirtySets = data
    ? data.sets.filter((s) => forms[s.id] && changes(forms[s.id] as SetForm, s).length > 0)
    : [];

  // bsched.yaml changed on disk (another editor, the CLI): reload when nothing is being edited.
  useLiveEvents((e) => {
    if (e.type !== "config" || busy) return;
    if (dirtySets.length === 0) void load();
    else {
      setStale(true);
      onConfigChanged(true);
    }
  });

  const onLive = useCallback((id: string, e: FieldError[]) => {
    setLive((l) => (JSON.stringify(l[id] ?? []) === JSON.stringify(e) ? l : { ...l, [id]: e }));
  }, []);

  async function ok() {
    if (!data) return;
    setBusy(true);
    setSaved(null);
    setError(null);
    const failed: Record<string, FieldError[]> = {};
    const written = dirtySets.map((s) => s.id);
    try {
      try {
        if (written.length > 0)
          await routes.saveSets(
            data.hash,
            Object.fromEntries(dirtySets.map((s) => [s.id, toSettings(forms[s.id] as SetForm, s)])),
          );
      } catch (e) {
        if (e instanceof ApiError && e.code === "CONFIG_CHANGED") {
          setStale(true);
          onConfigChanged(true);
          setError(e);
          return;
        }
        if (!(e instanceof ApiError && e.fields.length > 0)) throw e;
        // One edit for every tab: a field error names its set in its path (sets.ID.key).
        for (const f of e.fields) {
          const id =
            f.path[0] === "sets" && typeof f.path[1] === "string" ? f.path[1] : (dirtySets[0]?.id ?? "");
          failed[id] = [...(failed[id] ?? []), f];
        }
      }
      setErrors(failed);
      const bad = Object.keys(failed);
      if (bad.length > 0) {
        setTab(bad[0] ?? null);
        setError(
          new ApiError(
            400,
            "CONFIG_INVALID",
            `Nothing written: correct the fields marked in ${bad.map(setLabel).join(", ")}.`,
            null,
          ),
        );
        return;
      }
      await load();
      setSaved(written.length === 0 ? "Nothing changed." : `Saved: ${written.map(setLabel).join(", ")}.`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  function cancel() {
    if (!data) return;
    setForms(Object.fromEntries(data.sets.map((s) => [s.id, fromSettings(s)])));
    setErrors({});
    setError(null);
    setSaved("Changes discarded.");
  }

  if (!data) return error ? <ErrorBox error={error} /> : <div className="muted">Loading…</div>;
  const sets = bySeedOrder(data.sets, (s) => s.id);
  const current = sets.find((s) => s.id === tab);
  return (
    <div className="window settings">
      <div className="title-bar">Backup Scheduler</div>
      {stale ? (
        <div className="banner warn" role="alert">
          bsched.yaml was changed on disk since this window read it. Your changes here are not written.{" "}
          <button type="button" onClick={() => void load()}>
            Reload
          </button>
        </div>
      ) : null}
      <div className="tabs" role="tablist">
        {sets.map((s) => (
          <button
            key={s.id}
            type="button"
            role="tab"
            aria-selected={s.id === tab}
            className={`${s.id === tab ? "tab active" : "tab"}${(errors[s.id]?.length ?? 0) > 0 ? " tab-error" : ""}`}
            onClick={() => setTab(s.id)}
          >
            {setLabel(s.id)}
            {dirtySets.some((d) => d.id === s.id) ? " •" : ""}
          </button>
        ))}
        <button
          type="button"
          role="tab"
          aria-selected={tab === NEW}
          className={tab === NEW ? "tab active" : "tab"}
          title="Add a set"
          onClick={() => setTab(NEW)}
        >
          + New set
        </button>
      </div>
      <div className="window-body tab-panel" role="tabpanel">
        {tab === NEW ? (
          <NewSet
            hash={data.hash}
            onAdded={async (id) => {
              await load();
              setTab(id);
              setSaved(`Added the set ${id}.`);
            }}
          />
        ) : null}
        {current && forms[current.id] ? (
          <SetTab
            key={current.id}
            id={current.id}
            original={current}
            form={forms[current.id] as SetForm}
            onChange={(f) => {
              setForms((all) => ({ ...all, [current.id]: f }));
              setSaved(null);
            }}
            errors={errors[current.id] ?? []}
            liveErrors={live[current.id] ?? []}
            onLiveErrors={onLive}
            destinations={Object.keys(data.system.destinations)}
            timezone={data.system.timezoneInEffect}
          />
        ) : null}
      </div>
      <div className="window-foot">
        <div className="foot-status" aria-live="polite">
          {error ? <ErrorBox error={error} /> : saved ? <span className="saved">{saved}</span> : null}
        </div>
        <div className="buttons">
          <button type="button" className="primary" disabled={busy || stale} onClick={() => void ok()}>
            OK
          </button>
          <button type="button" disabled={busy} onClick={cancel}>
            Cancel
          </button>
        </div>
      </div>
    </div>
  );
}
