import { useState } from "react";
import { ApiError, type FieldError, routes } from "../api.ts";
import { ErrorBox } from "../ui/error-box.tsx";
import { Field } from "../ui/field.tsx";

/**
 * A custom set (a tab of its own): its id, letter and source folder; the seed's defaults for the
 * rest (automatic, weekly, Sunday, 04:00, separate, full), changed afterwards in its tab.
 */
export function NewSet({ hash, onAdded }: { hash: string; onAdded: (id: string) => Promise<void> }) {
  const [id, setId] = useState("");
  const [letter, setLetter] = useState("");
  const [source, setSource] = useState("");
  const [fields, setFields] = useState<FieldError[]>([]);
  const [error, setError] = useState<unknown>(null);
  const errorOf = (k: string) =>
    fields
      .filter((f) => f.path.map(String).includes(k))
      .map((f) => f.message)
      .join("; ") || undefined;

  async function add() {
    setFields([]);
    setError(null);
    const setId = id.trim();
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(setId)) {
      setFields([{ path: ["id"], message: "a set id of lowercase letters, digits, - and _" }]);
      return;
    }
    try {
      await routes.saveSet(setId, hash, {
        letter: letter.trim().toUpperCase(),
        source: source.trim(),
        automatic: true,
        folder: "default",
        type: "separate",
        mode: "full",
        frequency: "weekly",
        day: "sunday",
        time: "04:00",
        copies: [],
      });
      await onAdded(setId);
    } catch (e) {
      if (e instanceof ApiError) setFields(e.fields);
      setError(e);
    }
  }

  return (
    <div className="set-tab" data-set="">
      <p className="muted">A set of your own: one more tab, backed up on its own schedule.</p>
      <Field label="Set id" htmlFor="new-id" error={errorOf("id")} note="lowercase letters, digits, - and _">
        <input id="new-id" value={id} onChange={(e) => setId(e.target.value)} />
      </Field>
      <Field
        label="Letter"
        htmlFor="new-letter"
        error={errorOf("letter")}
        note="A–Z, one no other set uses: backups are named L_YYYY_MM_DD…"
      >
        <input
          id="new-letter"
          className="num"
          maxLength={1}
          value={letter}
          onChange={(e) => setLetter(e.target.value)}
        />
      </Field>
      <Field
        label="Source folder"
        htmlFor="new-source"
        error={errorOf("source")}
        note="Relative to the server root, or absolute"
      >
        <input id="new-source" className="wide" value={source} onChange={(e) => setSource(e.target.value)} />
      </Field>
      {error && !(error instanceof ApiError && error.fields.length > 0) ? <ErrorBox error={error} /> : null}
      <div className="buttons left">
        <button type="button" className="primary" onClick={() => void add()}>
          Add the set
        </button>
      </div>
    </div>
  );
}
