import { useState } from "react";
import { ApiError, type Destination, type FieldError, routes, type Settings } from "../api.ts";
import { ErrorBox } from "../ui/error-box.tsx";
import { Field } from "../ui/field.tsx";

type Kind = Destination["type"];

interface FieldSpec {
  key: string;
  label: string;
  secret?: boolean;
  number?: boolean;
  note?: string;
}

/** The keys of each destination type the window edits (src/config/destinations.ts). */
const FIELDS: Record<Kind, FieldSpec[]> = {
  local: [{ key: "path", label: "Folder", note: "An absolute path: a mounted disk's folder" }],
  sftp: [
    { key: "host", label: "Host" },
    { key: "port", label: "Port", number: true },
    { key: "user", label: "User" },
    { key: "path", label: "Folder on the server" },
    { key: "hostKey", label: "Host key", note: "SHA256:… as ssh-keygen -lf prints it on the server" },
    { key: "privateKey", label: "Private key file", note: "An absolute path on this machine" },
    { key: "passphrase", label: "Key passphrase", secret: true },
    { key: "password", label: "Password", secret: true },
  ],
  s3: [
    { key: "endpoint", label: "Endpoint", note: "https://… (empty: AWS)" },
    { key: "bucket", label: "Bucket" },
    { key: "prefix", label: "Prefix" },
    { key: "region", label: "Region" },
    { key: "accessKeyId", label: "Access key id" },
    { key: "secretAccessKey", label: "Secret access key", secret: true },
  ],
  smb: [
    { key: "share", label: "Share", note: "//server/share" },
    { key: "port", label: "Port", number: true },
    { key: "path", label: "Folder in the share" },
  ],
};

const SECRET_KEYS = new Set(["password", "passphrase", "secretAccessKey"]);

function whereOf(d: Destination): string {
  const s = (k: string) => (d[k] === undefined ? "" : String(d[k]));
  switch (d.type) {
    case "local":
      return s("path");
    case "sftp":
      return `sftp://${s("user")}@${s("host")}${d.port && d.port !== 22 ? `:${s("port")}` : ""}/${s("path").replace(/^\/+/, "")}`;
    case "s3":
      return `s3://${s("bucket")}/${s("prefix")}${d.endpoint ? ` at ${s("endpoint")}` : ""}`;
    case "smb":
      return `${s("share")}/${s("path")}`;
  }
}

/** Destinations: where backups live or are copied to. Add, edit, remove, test the connection. */
export function Destinations({
  data,
  onSaved,
  onConfigChanged,
}: {
  data: Settings;
  onSaved: () => Promise<void>;
  onConfigChanged: (changed: boolean) => void;
}) {
  const [editing, setEditing] = useState<{ name: string; isNew: boolean } | null>(null);
  const [tests, setTests] = useState<
    Record<string, { ok: boolean; backups?: number | undefined; error?: unknown } | "testing">
  >({});
  const [error, setError] = useState<unknown>(null);
  const entries = Object.entries(data.system.destinations);

  async function test(name: string) {
    setTests((t) => ({ ...t, [name]: "testing" }));
    try {
      const r = await routes.testDestination({ name });
      setTests((t) => ({
        ...t,
        [name]: r.ok ? { ok: true, backups: r.backups } : { ok: false, error: r.error },
      }));
    } catch (e) {
      setTests((t) => ({ ...t, [name]: { ok: false, error: e } }));
    }
  }

  async function remove(name: string) {
    if (!window.confirm(`Remove the destination ${name} from bsched.yaml? Its backups stay where they are.`))
      return;
    try {
      await routes.removeDestination(name, data.hash);
      await onSaved();
    } catch (e) {
      if (e instanceof ApiError && e.code === "CONFIG_CHANGED") onConfigChanged(true);
      setError(e);
    }
  }

  return (
    <div className="window">
      <div className="title-bar">Destinations</div>
      <div className="window-body">
        {entries.length === 0 ? (
          <p className="muted">No destinations: every set backs up into its folder on this machine.</p>
        ) : (
          <table className="grid">
            <thead>
              <tr>
                <th>Name</th>
                <th>Type</th>
                <th>Where</th>
                <th>Connection</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {entries.map(([name, d]) => {
                const t = tests[name];
                return (
                  <tr key={name} data-destination={name}>
                    <td>{name}</td>
                    <td>{d.type}</td>
                    <td className="path">{whereOf(d)}</td>
                    <td>
                      {t === undefined ? (
                        <span className="muted">not tested</span>
                      ) : t === "testing" ? (
                        <span className="muted">testing…</span>
                      ) : t.ok ? (
                        <span className="ok">
                          connected{t.backups !== undefined ? ` (${t.backups} backups there)` : ""}
                        </span>
                      ) : (
                        <ErrorBox error={t.error} />
                      )}
                    </td>
                    <td className="actions">
                      <button type="button" className="small" onClick={() => void test(name)}>
                        Test connection
                      </button>
                      <button
                        type="button"
                        className="small"
                        onClick={() => setEditing({ name, isNew: false })}
                      >
                        Edit
                      </button>
                      <button type="button" className="small" onClick={() => void remove(name)}>
                        Remove
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        <ErrorBox error={error} />
        {editing ? (
          <DestinationEditor
            key={editing.name}
            name={editing.name}
            isNew={editing.isNew}
            initial={data.system.destinations[editing.name]}
            hash={data.hash}
            onDone={async (saved) => {
              setEditing(null);
              if (saved) await onSaved();
            }}
            onConfigChanged={onConfigChanged}
          />
        ) : (
          <div className="buttons left">
            <button type="button" onClick={() => setEditing({ name: "", isNew: true })}>
              Add destination…
            </button>
          </div>
        )}
      </div>
    </div>
  );
}

function DestinationEditor({
  name: initialName,
  isNew,
  initial,
  hash,
  onDone,
  onConfigChanged,
}: {
  name: string;
  isNew: boolean;
  initial: Destination | undefined;
  hash: string;
  onDone: (saved: boolean) => Promise<void>;
  onConfigChanged: (changed: boolean) => void;
}) {
  const [name, setName] = useState(initialName);
  const [type, setType] = useState<Kind>(initial?.type ?? "local");
  const [values, setValues] = useState<Record<string, string>>(() => {
    const v: Record<string, string> = {};
    for (const [k, x] of Object.entries(initial ?? {}))
      if (k !== "type" && !SECRET_KEYS.has(k) && (typeof x === "string" || typeof x === "number"))
        v[k] = String(x);
    return v;
  });
  const [serviceLogin, setServiceLogin] = useState(
    initial?.type !== "smb" || initial.login === undefined || initial.login === "service",
  );
  const [login, setLogin] = useState<Record<string, string>>(() => {
    const l = initial?.login;
    return typeof l === "object" && l !== null
      ? {
          domain: String((l as Record<string, unknown>).domain ?? ""),
          user: String((l as Record<string, unknown>).user ?? ""),
        }
      : { domain: "", user: "" };
  });
  const [fields, setFields] = useState<FieldError[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [test, setTest] = useState<{ ok: boolean; error?: unknown } | "testing" | null>(null);
  const mask = (k: string) => initial?.[k] as { secret: string | null; set: boolean } | undefined;
  const secretNote = (k: string, note?: string) => {
    const m = mask(k);
    if (m === undefined) return note;
    if (!m.set) return `Not stored yet (secret:${m.secret}): type it.`;
    return `Stored${m.secret ? ` as secret ${m.secret}` : ""}. Leave empty to keep it.`;
  };
  const errorOf = (k: string) =>
    fields
      .filter((f) => f.path.map(String).includes(k))
      .map((f) => f.message)
      .join("; ") || undefined;

  /** The whole entry: what was read (keep, verify… the window does not edit) with the form's fields. */
  function destination(): Record<string, unknown> {
    const d: Record<string, unknown> = initial?.type === type ? { ...initial } : { type };
    for (const f of FIELDS[type]) {
      const v = (values[f.key] ?? "").trim();
      if (v !== "") d[f.key] = f.number && /^\d+$/.test(v) ? Number(v) : v;
      // An untouched secret goes back as the mask it came as: the stored value is kept.
      else if (f.secret && mask(f.key) !== undefined) d[f.key] = mask(f.key);
      else delete d[f.key];
    }
    if (type === "smb") {
      const old =
        initial?.type === "smb" && typeof initial.login === "object"
          ? (initial.login as Record<string, unknown>)
          : {};
      d.login = serviceLogin
        ? "service"
        : {
            ...(login.domain ? { domain: login.domain } : {}),
            user: login.user ?? "",
            ...(login.password
              ? { password: login.password }
              : old.password !== undefined
                ? { password: old.password }
                : {}),
          };
    }
    return d;
  }

  async function save() {
    setError(null);
    setFields([]);
    try {
      await routes.saveDestination(name.trim(), hash, destination());
      await onDone(true);
    } catch (e) {
      if (e instanceof ApiError && e.code === "CONFIG_CHANGED") onConfigChanged(true);
      if (e instanceof ApiError) setFields(e.fields);
      setError(e);
    }
  }

  async function testIt() {
    setTest("testing");
    try {
      const r = await routes.testDestination({
        destination: { ...destination(), ...(isNew ? {} : { name }) },
      });
      setTest(r.ok ? { ok: true } : { ok: false, error: r.error });
    } catch (e) {
      setTest({ ok: false, error: e });
    }
  }

  return (
    <fieldset className="group editor">
      <legend>{isNew ? "New destination" : `Destination ${initialName}`}</legend>
      <Field label="Name" htmlFor="dest-name" error={errorOf("name")}>
        <input id="dest-name" value={name} disabled={!isNew} onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field label="Type" htmlFor="dest-type" error={errorOf("type")}>
        <select id="dest-type" value={type} onChange={(e) => setType(e.target.value as Kind)}>
          <option value="local">Local folder (a mounted disk)</option>
          <option value="smb">Windows share (SMB)</option>
          <option value="sftp">SFTP server</option>
          <option value="s3">S3 object storage</option>
        </select>
      </Field>
      {FIELDS[type].map((f) => (
        <Field
          key={f.key}
          label={f.label}
          htmlFor={`dest-${f.key}`}
          error={errorOf(f.key)}
          note={f.secret ? secretNote(f.key, f.note) : f.note}
        >
          <input
            id={`dest-${f.key}`}
            type={f.secret ? "password" : "text"}
            autoComplete={f.secret ? "new-password" : "off"}
            value={values[f.key] ?? ""}
            onChange={(e) => setValues((v) => ({ ...v, [f.key]: e.target.value }))}
          />
        </Field>
      ))}
      {type === "smb" ? (
        <>
          <label className="check">
            <input
              type="checkbox"
              checked={serviceLogin}
              onChange={(e) => setServiceLogin(e.target.checked)}
            />
            Use the service login (System parameters)
          </label>
          {serviceLogin ? null : (
            <>
              <Field label="Domain" htmlFor="dest-l-domain">
                <input
                  id="dest-l-domain"
                  value={login.domain ?? ""}
                  onChange={(e) => setLogin({ ...login, domain: e.target.value })}
                />
              </Field>
              <Field label="Login name" htmlFor="dest-l-user" error={errorOf("user")}>
                <input
                  id="dest-l-user"
                  value={login.user ?? ""}
                  onChange={(e) => setLogin({ ...login, user: e.target.value })}
                />
              </Field>
              <Field label="Password" htmlFor="dest-l-password" error={errorOf("password")}>
                <input
                  id="dest-l-password"
                  type="password"
                  autoComplete="new-password"
                  value={login.password ?? ""}
                  onChange={(e) => setLogin({ ...login, password: e.target.value })}
                />
              </Field>
            </>
          )}
        </>
      ) : null}
      {error && !(error instanceof ApiError && error.fields.length > 0) ? <ErrorBox error={error} /> : null}
      {test === "testing" ? (
        <div className="muted">Testing the connection…</div>
      ) : test?.ok ? (
        <div className="ok">Connected.</div>
      ) : test ? (
        <ErrorBox error={test.error} title="Connection failed" />
      ) : null}
      <div className="buttons">
        <button type="button" onClick={() => void testIt()}>
          Test connection
        </button>
        <button type="button" className="primary" onClick={() => void save()}>
          OK
        </button>
        <button type="button" onClick={() => void onDone(false)}>
          Cancel
        </button>
      </div>
    </fieldset>
  );
}
