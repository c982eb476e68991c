import { useCallback, useEffect, useState } from "react";
import {
  ApiError,
  onReachability,
  onUnauthorized,
  routes,
  type Session,
  setCsrf,
  UNREACHABLE,
} from "./api.ts";
import { Backups } from "./backups/backups.tsx";
import { closeEvents, openEvents, useEventsConnected, useLiveEvents } from "./events.ts";
import { History } from "./history/history.tsx";
import { Login } from "./login/login.tsx";
import { Settings } from "./settings/settings.tsx";
import { Status } from "./status/status.tsx";
import { SystemParameters } from "./system/system.tsx";
import { ErrorBox } from "./ui/error-box.tsx";

const SCREENS = [
  { path: "/status", label: "Status" },
  { path: "/settings", label: "Backup Scheduler" },
  { path: "/history", label: "History" },
  { path: "/backups", label: "Backups and restore" },
  { path: "/system", label: "System parameters" },
] as const;
type ScreenPath = (typeof SCREENS)[number]["path"];

function screenOf(pathname: string): ScreenPath {
  return SCREENS.find((s) => pathname.startsWith(s.path))?.path ?? "/status";
}

/** The window: the login, then the screens, with what the user must know on top (daemon away, config changed). */
export function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [bootError, setBootError] = useState<unknown>(null);
  const [screen, setScreen] = useState<ScreenPath>(screenOf(window.location.pathname));
  const [reachable, setReachable] = useState(true);
  const [configChanged, setConfigChanged] = useState(false);
  const [sets, setSets] = useState<string[]>([]);

  const check = useCallback(async () => {
    try {
      const s = await routes.session();
      setCsrf(s.csrf);
      setSession(s);
      setBootError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setSession(null);
      else setBootError(e);
    }
  }, []);

  useEffect(() => {
    void check();
    const offReach = onReachability(setReachable);
    const offAuth = onUnauthorized(() => {
      setCsrf(null);
      closeEvents();
      setSession(null);
    });
    const onPop = () => setScreen(screenOf(window.location.pathname));
    window.addEventListener("popstate", onPop);
    return () => {
      offReach();
      offAuth();
      window.removeEventListener("popstate", onPop);
    };
  }, [check]);

  useEffect(() => {
    if (!session) return;
    openEvents();
    routes
      .status()
      .then((s) => setSets(s.sets.map((x) => x.set)))
      .catch(() => undefined);
    return () => closeEvents();
  }, [session]);

  const go = (p: ScreenPath) => {
    window.history.pushState(null, "", p);
    setScreen(p);
  };

  if (session === undefined)
    return bootError ? (
      <div className="login-page">
        <div className="window login">
          <div className="title-bar">Backup Scheduler</div>
          <div className="window-body">
            <ErrorBox error={bootError} />
            <div className="buttons">
              <button type="button" onClick={() => void check()}>
                Try again
              </button>
            </div>
          </div>
        </div>
      </div>
    ) : (
      <div className="muted center">Loading…</div>
    );
  if (session === null)
    return (
      <Login
        onLogin={(s) => {
          setCsrf(s.csrf);
          setSession(s);
        }}
      />
    );

  return (
    <div className="app">
      <header className="top">
        <div className="brand">Backup Scheduler</div>
        <nav className="nav">
          {SCREENS.map((s) => (
            <a
              key={s.path}
              href={s.path}
              className={s.path === screen ? "active" : ""}
              aria-current={s.path === screen ? "page" : undefined}
              onClick={(e) => {
                e.preventDefault();
                go(s.path);
              }}
            >
              {s.label}
            </a>
          ))}
        </nav>
        <div className="who">
          {session.user}{" "}
          <button
            type="button"
            className="small"
            onClick={() => {
              void routes.logout().finally(() => {
                setCsrf(null);
                closeEvents();
                setSession(null);
              });
            }}
          >
            Log out
          </button>
        </div>
      </header>
      <Banners reachable={reachable} configChanged={configChanged} />
      <main className="main">
        {screen === "/settings" ? (
          <Settings onConfigChanged={setConfigChanged} />
        ) : screen === "/system" ? (
          <SystemParameters onConfigChanged={setConfigChanged} />
        ) : screen === "/history" ? (
          <History sets={sets} />
        ) : screen === "/backups" ? (
          <Backups />
        ) : (
          <Status />
        )}
      </main>
    </div>
  );
}

function Banners({ reachable, configChanged }: { reachable: boolean; configChanged: boolean }) {
  const connected = useEventsConnected();
  const [changedOnDisk, setChangedOnDisk] = useState(false);
  useLiveEvents((e) => {
    if (e.type === "config" && (e.data.changed === true || e.data.source === "disk")) setChangedOnDisk(true);
  });
  const away = !reachable || connected === false;
  return (
    <>
      {away ? (
        <div className="banner bad" role="alert" data-banner={UNREACHABLE}>
          The bsched daemon is not reachable: what this window shows may be old, and nothing can be changed.
          Start it (<code>bsched daemon</code>, or the bsched service); this window reconnects by itself.
        </div>
      ) : null}
      {configChanged ? (
        <div className="banner warn" role="alert" data-banner="CONFIG_CHANGED">
          bsched.yaml was changed by someone else since this window read it: nothing of yours was written over
          it. Reload to see the current settings, then make your change again.{" "}
          <button type="button" onClick={() => window.location.reload()}>
            Reload
          </button>
        </div>
      ) : changedOnDisk ? (
        <div className="banner info" role="status">
          bsched.yaml changed on disk and the daemon reloaded it.{" "}
          <button type="button" className="small" onClick={() => setChangedOnDisk(false)}>
            OK
          </button>
        </div>
      ) : null}
    </>
  );
}
