import { ApiError } from "../api.ts";

/** An error as the CLI prints it: the message, its code, and the fix its hint names. */
export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (error === null || error === undefined) return null;
  const e =
    error instanceof ApiError
      ? error
      : (error as { code?: string; message?: string; hint?: string | null } | undefined);
  const message = e?.message ?? String(error);
  return (
    <div className="error-box" role="alert">
      <div>
        {title ? <strong>{title}: </strong> : null}
        {message}
        {e?.code ? <code className="code">{e.code}</code> : null}
      </div>
      {e?.hint ? <div className="hint">Fix: {e.hint}</div> : null}
    </div>
  );
}
