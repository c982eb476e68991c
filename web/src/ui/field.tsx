import type { ReactNode } from "react";

/** A labelled field with its error beside it (the API's `fields`, or the window's own check). */
export function Field({
  label,
  error,
  children,
  htmlFor,
  note,
}: {
  label: string;
  error?: string | undefined;
  children: ReactNode;
  htmlFor?: string;
  note?: ReactNode;
}) {
  return (
    <div className={error ? "field has-error" : "field"}>
      <label className="field-label" htmlFor={htmlFor}>
        {label}
      </label>
      <div className="field-control">
        {children}
        {note ? <div className="field-note">{note}</div> : null}
        {error ? (
          <div className="field-error" role="alert">
            {error}
          </div>
        ) : null}
      </div>
    </div>
  );
}

/** The window's 24-hour times: a text field (a time input is 12-hour in some browsers). */
export const HHMM = "([01][0-9]|2[0-3]):[0-5][0-9]";
