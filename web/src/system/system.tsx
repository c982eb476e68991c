import { type FormEvent, useCallback, useEffect, useState } from "react";
import { ApiError, type FieldError, routes, type Settings } from "../api.ts";
import { ErrorBox } from "../ui/error-box.tsx";
import { Field } from "../ui/field.tsx";
import { Destinations } from "./destinations.tsx";

const fieldError = (errors: FieldError[], name: string) =>
  errors
    .filter((e) => e.path.map(String).includes(name))
    .map((e) => e.message)
    .join("; ") || undefined;

/**
 * The seed's System parameters: the service login (domain, login name, password typed twice:
 * stored as a secret by the daemon, never sent back, so the field is empty and says whether one is
 * set), the time zone and how many sets may run at once; and the destinations.
 */
export function SystemParameters({ onConfigChanged }: { onConfigChanged: (changed: boolean) => void }) {
  const [data, setData] = useState<Settings | null>(null);
  const [domain, setDomain] = useState("");
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [timezone, setTimezone] = useState("");
  const [concurrency, setConcurrency] = useState("1");
  const [fields, setFields] = useState<FieldError[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      const d = await routes.settings();
      setData(d);
      setDomain(d.system.serviceLogin?.domain ?? "");
      setUser(d.system.serviceLogin?.user ?? "");
      setPassword("");
      setConfirm("");
      setTimezone(d.system.timezone);
      setConcurrency(String(d.system.concurrency));
      setFields([]);
      setError(null);
      onConfigChanged(false);
    } catch (e) {
      setError(e);
    }
  }, [onConfigChanged]);

  useEffect(() => {
    void load();
  }, [load]);

  async function ok(e: FormEvent) {
    e.preventDefault();
    if (!data) return;
    setSaved(null);
    setError(null);
    if (password !== confirm) {
      setFields([
        {
          path: ["serviceLogin", "confirm"],
          message: "The two passwords differ: type the same password twice",
        },
      ]);
      return;
    }
    const login = data.system.serviceLogin;
    const loginChanged = password !== "" || user !== (login?.user ?? "") || domain !== (login?.domain ?? "");
    // An emptied login name removes the service login (its stored password stays in the store).
    const removeLogin =
      loginChanged && login !== null && user.trim() === "" && domain.trim() === "" && password === "";
    if (loginChanged && !removeLogin && user.trim() === "") {
      setFields([{ path: ["serviceLogin", "user"], message: "a login name" }]);
      return;
    }
    if (loginChanged && !removeLogin && !login?.passwordSet && password === "") {
      setFields([{ path: ["serviceLogin", "password"], message: "a password (typed twice)" }]);
      return;
    }
    const body: Parameters<typeof routes.saveSystem>[0] = { hash: data.hash };
    if (removeLogin) body.serviceLogin = null;
    else if (loginChanged)
      body.serviceLogin = {
        user: user.trim(),
        ...(domain.trim() === "" ? {} : { domain: domain.trim() }),
        ...(password === "" ? {} : { password }),
      };
    if (timezone.trim() !== data.system.timezone)
      body.timezone = timezone.trim() === "" ? null : timezone.trim();
    if (concurrency !== String(data.system.concurrency))
      body.concurrency = /^\d+$/.test(concurrency) ? Number(concurrency) : (concurrency as unknown as number);
    setBusy(true);
    try {
      if (Object.keys(body).length > 1) await routes.saveSystem(body);
      await load();
      setSaved(Object.keys(body).length > 1 ? "Saved." : "Nothing changed.");
    } catch (err) {
      if (err instanceof ApiError && err.code === "CONFIG_CHANGED") onConfigChanged(true);
      if (err instanceof ApiError && err.fields.length > 0) setFields(err.fields);
      setError(err);
    } finally {
      setPassword("");
      setConfirm("");
      setBusy(false);
    }
  }

  if (!data) return error ? <ErrorBox error={error} /> : <div className="muted">Loading…</div>;
  const passwordSet = data.system.serviceLogin?.passwordSet ?? false;
  return (
    <div className="stack narrow">
      <form className="window" onSubmit={(e) => void ok(e)} noValidate aria-label="System parameters">
        <div className="title-bar">System parameters</div>
        <div className="window-body">
          <fieldset className="group">
            <legend>Service login information</legend>
            <Field label="Domain name" htmlFor="sl-domain" error={fieldError(fields, "domain")}>
              <input
                id="sl-domain"
                value={domain}
                onChange={(e) => setDomain(e.target.value)}
                placeholder="WORKGROUP"
              />
            </Field>
            <Field label="Login name" htmlFor="sl-user" error={fieldError(fields, "user")}>
              <input id="sl-user" autoComplete="off" value={user} onChange={(e) => setUser(e.target.value)} />
            </Field>
            <Field
              label="Password"
              htmlFor="sl-password"
              error={fieldError(fields, "password")}
              note={passwordSet ? "A password is set. Leave empty to keep it." : "No password set yet."}
            >
              <input
                id="sl-password"
                type="password"
                autoComplete="new-password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            </Field>
            <Field label="Password confirmation" htmlFor="sl-confirm" error={fieldError(fields, "confirm")}>
              <input
                id="sl-confirm"
                type="password"
                autoComplete="new-password"
                value={confirm}
                onChange={(e) => setConfirm(e.target.value)}
              />
            </Field>
          </fieldset>
          <fieldset className="group">
            <legend>Server</legend>
            <Field
              label="Time zone"
              htmlFor="sys-tz"
              error={fieldError(fields, "timezone")}
              note={`IANA name, e.g. Europe/Paris; empty: this machine's (${data.system.timezoneInEffect})`}
            >
              <input
                id="sys-tz"
                value={timezone}
                placeholder={data.system.timezoneInEffect}
                onChange={(e) => setTimezone(e.target.value)}
              />
            </Field>
            <Field
              label="Concurrency"
              htmlFor="sys-conc"
              error={fieldError(fields, "concurrency")}
              note="How many sets may back up at the same time (1–16)"
            >
              <input
                id="sys-conc"
                className="num"
                inputMode="numeric"
                value={concurrency}
                onChange={(e) => setConcurrency(e.target.value)}
              />
            </Field>
          </fieldset>
        </div>
        <div className="window-foot">
          <div className="foot-status" aria-live="polite">
            {error && !(error instanceof ApiError && error.fields.length > 0) ? (
              <ErrorBox error={error} />
            ) : saved ? (
              <span className="saved">{saved}</span>
            ) : null}
          </div>
          <div className="buttons">
            <button type="submit" className="primary" disabled={busy}>
              OK
            </button>
            <button type="button" disabled={busy} onClick={() => void load()}>
              Cancel
            </button>
          </div>
        </div>
      </form>
      <Destinations data={data} onSaved={load} onConfigChanged={onConfigChanged} />
    </div>
  );
}
