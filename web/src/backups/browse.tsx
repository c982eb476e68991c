import { useEffect, useState } from "react";
import { type FileEntry, routes } from "../api.ts";
import { ErrorBox } from "../ui/error-box.tsx";
import { bytes } from "../ui/format.ts";

/** One folder level of a backup's files (from its manifest), with paths to pick for a restore. Keyed by backup: a new one starts at its top. */
export function Browse({
  set,
  backup,
  dest,
  picked,
  onPick,
}: {
  set: string;
  backup: string;
  dest: string | undefined;
  picked: string[];
  onPick: (paths: string[]) => void;
}) {
  const [dir, setDir] = useState("");
  const [entries, setEntries] = useState<FileEntry[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let stale = false;
    setEntries(null);
    routes
      .files(set, backup, dir, dest)
      .then((e) => {
        if (stale) return;
        setEntries(e);
        setError(null);
      })
      .catch((e: unknown) => {
        if (!stale) setError(e);
      });
    return () => {
      stale = true;
    };
  }, [set, backup, dir, dest]);

  const parts = dir === "" ? [] : dir.split("/");
  return (
    <div className="browse">
      <div className="crumbs">
        <button type="button" className="link" onClick={() => setDir("")}>
          {backup}
        </button>
        {parts.map((p, i) => (
          <span key={parts.slice(0, i + 1).join("/")}>
            {" / "}
            <button type="button" className="link" onClick={() => setDir(parts.slice(0, i + 1).join("/"))}>
              {p}
            </button>
          </span>
        ))}
      </div>
      {error ? <ErrorBox error={error} /> : null}
      {entries === null ? (
        error ? null : (
          <div className="muted">Loading…</div>
        )
      ) : entries.length === 0 ? (
        <div className="muted">Empty folder.</div>
      ) : (
        <table className="grid files">
          <thead>
            <tr>
              <th className="pick">Restore</th>
              <th>Name</th>
              <th className="num">Size</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.path} data-path={e.path}>
                <td className="pick">
                  <input
                    type="checkbox"
                    aria-label={`Restore ${e.path}`}
                    checked={picked.includes(e.path)}
                    onChange={(ev) =>
                      onPick(ev.target.checked ? [...picked, e.path] : picked.filter((p) => p !== e.path))
                    }
                  />
                </td>
                <td>
                  {e.kind === "dir" ? (
                    <button type="button" className="link" onClick={() => setDir(e.path)}>
                      <span className="icon icon-dir" />
                      {e.name}/
                    </button>
                  ) : (
                    <span>
                      <span className={e.kind === "symlink" ? "icon icon-link" : "icon icon-file"} />
                      {e.name}
                    </span>
                  )}
                </td>
                <td className="num">{e.kind === "file" ? bytes(e.size) : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
