import { useCallback } from "react";
import type { FieldError, SetSettings } from "../api.ts";
import { Field, HHMM } from "../ui/field.tsx";
import { setLabel } from "../ui/format.ts";
import {
  dayFor,
  fieldErrors,
  hasDay,
  KINDS,
  SEED_FREQUENCIES,
  type SetForm,
  toSettings,
  WEEKDAYS,
} from "./form.ts";
import { NextRuns } from "./next-runs.tsx";

const MONTH_DAYS = Array.from({ length: 31 }, (_, i) => String(i + 1));

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** One tab of the seed's window: a set's schedule, folder, type, copies and retention. */
export function SetTab({
  id,
  original,
  form,
  onChange,
  errors,
  liveErrors,
  onLiveErrors,
  destinations,
  timezone,
}: {
  id: string;
  original: SetSettings;
  form: SetForm;
  onChange: (f: SetForm) => void;
  errors: FieldError[];
  liveErrors: FieldError[];
  onLiveErrors: (id: string, e: FieldError[]) => void;
  destinations: string[];
  timezone: string;
}) {
  const shown = fieldErrors(errors.length > 0 ? errors : liveErrors, id);
  const off = !form.automatic;
  const set = <K extends keyof SetForm>(k: K, v: SetForm[K]) => onChange({ ...form, [k]: v });
  const frequencies: string[] = [...SEED_FREQUENCIES];
  if (!frequencies.includes(original.frequency)) frequencies.push(original.frequency);
  const live = useCallback((e: FieldError[]) => onLiveErrors(id, e), [id, onLiveErrors]);
  const p = (name: string) => `${id}-${name}`;
  return (
    <div className="set-tab" data-set={id}>
      {shown.other.length > 0 ? (
        <div className="error-box" role="alert">
          {shown.other.join("; ")}
        </div>
      ) : null}
      <label className="check automatic">
        <input
          type="checkbox"
          name="automatic"
          checked={form.automatic}
          onChange={(e) => set("automatic", e.target.checked)}
        />
        Automatic backup
      </label>
      <fieldset className="group" disabled={off}>
        <legend>Backup folder</legend>
        <Field label="" error={shown.byField.folder}>
          <div className="radios">
            <label className="check">
              <input
                type="radio"
                name={p("folder")}
                value="default"
                checked={form.folderKind === "default"}
                onChange={() => set("folderKind", "default")}
              />
              Default folder
            </label>
            <label className="check">
              <input
                type="radio"
                name={p("folder")}
                value="specific"
                checked={form.folderKind === "specific"}
                onChange={() => set("folderKind", "specific")}
              />
              Specific folder
            </label>
            <input
              className="wide"
              aria-label="Specific folder"
              name="folder"
              list={p("destinations")}
              placeholder="/absolute/path or a destination's name"
              disabled={off || form.folderKind === "default"}
              value={form.folder}
              onChange={(e) => set("folder", e.target.value)}
            />
            <datalist id={p("destinations")}>
              {destinations.map((d) => (
                <option key={d} value={d} />
              ))}
            </datalist>
          </div>
        </Field>
      </fieldset>
      <fieldset className="group" disabled={off}>
        <legend>Schedule</legend>
        <Field label="Type" htmlFor={p("kind")} error={shown.byField.type ?? shown.byField.mode}>
          <select
            id={p("kind")}
            name="kind"
            value={`${form.type}/${form.mode}`}
            onChange={(e) => {
              const [type, mode] = e.target.value.split("/") as [SetForm["type"], SetForm["mode"]];
              onChange({ ...form, type, mode });
            }}
          >
            {KINDS.map((k) => (
              <option key={k.label} value={`${k.type}/${k.mode}`}>
                {k.label}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Frequency" error={shown.byField.frequency}>
          <div className="radios" role="radiogroup" aria-label="Frequency">
            {frequencies.map((f) => (
              <label key={f} className="check">
                <input
                  type="radio"
                  name={p("frequency")}
                  value={f}
                  checked={form.frequency === f}
                  onChange={() =>
                    onChange({
                      ...form,
                      frequency: f,
                      day: dayFor(f, form.day),
                    })
                  }
                />
                {cap(f)}
              </label>
            ))}
          </div>
        </Field>
        {hasDay(form.frequency) ? (
          <Field label="Day" htmlFor={p("day")} error={shown.byField.day}>
            <select id={p("day")} name="day" value={form.day} onChange={(e) => set("day", e.target.value)}>
              {form.frequency === "weekly"
                ? WEEKDAYS.map((d) => (
                    <option key={d} value={d}>
                      {cap(d)}
                    </option>
                  ))
                : [
                    ...MONTH_DAYS.map((d) => (
                      <option key={d} value={d}>
                        {d}
                      </option>
                    )),
                    <option key="last" value="last">
                      Last day of the month
                    </option>,
                  ]}
            </select>
          </Field>
        ) : null}
        {form.frequency === "every" ? (
          <Field label="Every" htmlFor={p("every")} error={shown.byField.every}>
            <input
              id={p("every")}
              name="every"
              value={form.every}
              onChange={(e) => set("every", e.target.value)}
            />
          </Field>
        ) : null}
        <Field label="Time" htmlFor={p("time")} error={shown.byField.time} note="24-hour HH:MM">
          <input
            id={p("time")}
            name="time"
            className="time"
            inputMode="numeric"
            pattern={HHMM}
            placeholder="HH:MM"
            maxLength={5}
            value={form.time}
            onChange={(e) => set("time", e.target.value)}
          />
        </Field>
      </fieldset>
      <fieldset className="group" disabled={off}>
        <legend>Copies and retention</legend>
        <Field label="Copies to" error={shown.byField.copies}>
          {destinations.length === 0 ? (
            <span className="muted">No destinations yet (System parameters → Destinations)</span>
          ) : (
            <div className="radios">
              {destinations.map((d) => (
                <label key={d} className="check">
                  <input
                    type="checkbox"
                    name="copies"
                    value={d}
                    checked={form.copies.includes(d)}
                    onChange={(e) =>
                      set(
                        "copies",
                        e.target.checked ? [...form.copies, d] : form.copies.filter((c) => c !== d),
                      )
                    }
                  />
                  {d}
                </label>
              ))}
            </div>
          )}
        </Field>
        <Field
          label="Keep"
          error={shown.byField.keep}
          note="Empty everywhere: every backup is kept. The newest restorable state is always kept."
        >
          <div className="keep">
            {(["last", "daily", "weekly", "monthly"] as const).map((k) => (
              <label key={k} className="keep-item">
                {k === "last" ? "last" : k}
                <input
                  name={`keep-${k}`}
                  inputMode="numeric"
                  className="num"
                  value={form.keep[k]}
                  onChange={(e) => set("keep", { ...form.keep, [k]: e.target.value })}
                />
              </label>
            ))}
          </div>
        </Field>
      </fieldset>
      <NextRuns setId={id} settings={toSettings(form, original)} timezone={timezone} onFieldErrors={live} />
      <div className="muted small">
        {setLabel(id)}: letter {original.letter}, source {original.source}
      </div>
    </div>
  );
}
