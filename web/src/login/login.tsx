import { type FormEvent, useState } from "react";
import { ApiError, routes, type Session } from "../api.ts";
import { ErrorBox } from "../ui/error-box.tsx";
import { Field } from "../ui/field.tsx";

/** The one-time setup link's token, if this page was opened from it (`/setup?token=…`). */
export function setupToken(): string | null {
  const url = new URL(window.location.href);
  const q = url.searchParams.get("token") ?? url.searchParams.get("setup");
  if (q) return q;
  const h = /(?:^#|&)(?:setup|token)=([^&]+)/.exec(url.hash);
  return h?.[1] ? decodeURIComponent(h[1]) : null;
}

/** Log in; or, from the setup link, create the first administrator (then logged in). */
export function Login({ onLogin }: { onLogin: (s: Session) => void }) {
  const token = setupToken();
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [mismatch, setMismatch] = useState<string | undefined>();

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setMismatch(undefined);
    if (token && password !== confirm) {
      setMismatch("The two passwords differ: type the same password twice");
      return;
    }
    setBusy(true);
    try {
      const s = token ? await routes.setup(token, user, password) : await routes.login(user, password);
      if (token) window.history.replaceState(null, "", "/");
      // Setup may answer without a session: log in with what was just created.
      onLogin(s?.csrf ? s : await routes.login(user, password));
    } catch (err) {
      setError(err);
      setPassword("");
      setConfirm("");
    } finally {
      setBusy(false);
    }
  }

  const wrong = error instanceof ApiError && error.status === 401;
  return (
    <div className="login-page">
      <form className="window login" onSubmit={(e) => void submit(e)} aria-label="Log in">
        <div className="title-bar">Backup Scheduler</div>
        <div className="window-body">
          <p className="lead">
            {token ? "Create the administrator of this Backup Scheduler." : "Log in to the Backup Scheduler."}
          </p>
          <Field label="Login name" htmlFor="login-user">
            <input
              id="login-user"
              name="user"
              autoComplete="username"
              required
              value={user}
              onChange={(e) => setUser(e.target.value)}
            />
          </Field>
          <Field label="Password" htmlFor="login-password">
            <input
              id="login-password"
              name="password"
              type="password"
              autoComplete={token ? "new-password" : "current-password"}
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          </Field>
          {token ? (
            <Field label="Password confirmation" htmlFor="login-confirm" error={mismatch}>
              <input
                id="login-confirm"
                type="password"
                autoComplete="new-password"
                required
                value={confirm}
                onChange={(e) => setConfirm(e.target.value)}
              />
            </Field>
          ) : null}
          {wrong ? (
            <div className="error-box" role="alert">
              Wrong login name or password.
            </div>
          ) : (
            <ErrorBox error={error} />
          )}
          <div className="buttons">
            <button type="submit" className="primary" disabled={busy}>
              {token ? "Create and log in" : "Log in"}
            </button>
          </div>
          {token ? null : (
            <p className="note">
              No account yet? Run <code>bsched user add NAME</code> on the server, or open the one-time setup
              link the daemon printed at its first start.
            </p>
          )}
        </div>
      </form>
    </div>
  );
}
