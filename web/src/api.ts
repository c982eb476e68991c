/*
 * The window's only way to the daemon: the REST API of docs/design.md "The window and its API".
 * Every call sends the session cookie; every change sends the session's CSRF token; every error
 * comes back as an ApiError with the CLI's code, message and hint (and, for bad values, the
 * fields they concern), so a screen shows it beside its field. The shapes below are the window's
 * view of the contract; where a route may answer in two ways (a bare list or an object holding
 * it) the normalisers accept both, so a screen never depends on that detail.
 */

export interface FieldError {
  path: (string | number)[];
  message: string;
}

export class ApiError extends Error {
  readonly code: string;
  readonly hint: string | null;
  readonly fields: FieldError[];
  /** The HTTP status; 0 when the daemon did not answer at all. */
  readonly status: number;
  constructor(status: number, code: string, message: string, hint: string | null, fields: FieldError[] = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = hint;
    this.fields = fields;
  }
}

/** The code of the error the window makes itself when the daemon does not answer. */
export const UNREACHABLE = "DAEMON_UNREACHABLE";

let csrf: string | null = null;

/** The session's CSRF token, from login or GET /api/session: sent with every change. */
export function setCsrf(token: string | null): void {
  csrf = token;
}

type Listener = (reachable: boolean) => void;
const reachability = new Set<Listener>();
const unauthorized = new Set<() => void>();

/** Told after every call whether the daemon answered: the window's "not reachable" banner. */
export function onReachability(l: Listener): () => void {
  reachability.add(l);
  return () => reachability.delete(l);
}

/** Told when a call answers 401: the session ended (expired, logged out elsewhere, daemon restarted). */
export function onUnauthorized(l: () => void): () => void {
  unauthorized.add(l);
  return () => unauthorized.delete(l);
}

function tell(reachable: boolean): void {
  for (const l of reachability) l(reachable);
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrf !== null) headers["x-csrf-token"] = csrf;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    tell(false);
    throw new ApiError(
      0,
      UNREACHABLE,
      "The bsched daemon is not reachable.",
      "start it (bsched daemon, or the bsched service), then reload this page",
    );
  }
  // A proxy's 502/503/504 means the same as no answer: the daemon behind it is not there.
  const reachable = res.status !== 502 && res.status !== 503 && res.status !== 504;
  tell(reachable);
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text === "" ? null : JSON.parse(text);
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = (data as { error?: Partial<ApiError> & { fields?: FieldError[] } } | null)?.error;
    if (res.status === 401 && !path.endsWith("/login")) for (const l of unauthorized) l();
    if (!reachable)
      throw new ApiError(
        res.status,
        UNREACHABLE,
        "The bsched daemon is not reachable.",
        "start it (bsched daemon, or the bsched service), then reload this page",
      );
    throw new ApiError(
      res.status,
      e?.code ?? `HTTP_${res.status}`,
      e?.message ?? `${method} ${path}: ${res.status} ${res.statusText}`,
      e?.hint ?? null,
      e?.fields ?? [],
    );
  }
  return data as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body: unknown = {}) => request<T>("POST", path, body),
  put: <T>(path: string, body: unknown) => request<T>("PUT", path, body),
  del: <T>(path: string, body?: unknown) => request<T>("DELETE", path, body),
};

/** `?a=1&b=2` of the defined, non-empty values. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}

const enc = encodeURIComponent;

/* ---------- the shapes the window reads ---------- */

export interface Session {
  user: string;
  csrf: string;
}

export interface Progress {
  phase: "scan" | "copy" | "verify" | "restore" | "publish" | "done";
  files: number;
  bytes: number;
  totalFiles: number;
  totalBytes: number;
  current?: string;
  destination?: string;
  rate?: number;
}

export interface RunInfo {
  id: string;
  kind: "backup" | "restore" | "verify" | "prune" | "copy" | "drill";
  set?: string | null;
  trigger: string;
  startedAt: string;
  /** Its latest progress (null before the first). */
  progress?: Progress | null;
}

export interface RunError {
  code: string;
  message: string;
  hint: string | null;
}

/** One run as GET /api/runs/:id tells it: running, or ended with its result or error. */
export interface RunState {
  info: RunInfo;
  ended: boolean;
  result?: Record<string, unknown> | undefined;
  error?: RunError | undefined;
}

export interface RunRecord {
  id: number;
  set: string;
  planned: string | null;
  trigger: string;
  startedAt: string | null;
  finishedAt: string | null;
  status: string;
  warnings: number;
  files: number;
  bytes: number;
  backup: string | null;
  error: string | null;
  errorCode: string | null;
  errorHint: string | null;
  /** The run's warnings (null: not readable from here). */
  warningList?: { path: string; code: string; message: string }[] | null;
}

export interface CopyStatus {
  destination: string;
  where: string;
  newest: string | null;
  count: number | null;
  behind: number | null;
  lastCopy: {
    at: string;
    ok: boolean;
    copied: number;
    code?: string;
    message?: string;
    hint?: string;
  } | null;
  error?: string;
  errorCode?: string;
  errorHint?: string;
}

/** A drill as status shows it (src/ops/drill-status.ts). */
export interface DrillSeen {
  at: string;
  backup: string | null;
  pick: "newest" | "older" | "chosen";
  /** The restore's time: the set's real recovery time from that place. */
  restoreMs: number | null;
  ok: boolean;
  error: string | null;
  errorCode: string | null;
  errorHint: string | null;
}

/** Restore drills of a set (issue 14): per place, "last proven restorable" and the last drill. */
export interface DrillStatus {
  scheduled: boolean;
  nextRun: string | null;
  places: { destination: string; lastProven: DrillSeen | null; lastDrill: DrillSeen | null }[];
}

export interface SetStatus {
  set: string;
  automatic: boolean;
  schedule: { frequency: string; day: string | number | null; time: string; timezone: string };
  nextRun: string | null;
  mode: string;
  lastRun: {
    status: string;
    trigger: string;
    startedAt: string | null;
    finishedAt: string | null;
    backup: string | null;
    error: string | null;
    errorCode: string | null;
    errorHint: string | null;
  } | null;
  backups: {
    count: number;
    storedBytes: number;
    diskBytes: number;
    newest: string | null;
    broken: number;
    error?: string;
    errorCode?: string;
    errorHint?: string;
  };
  copies: CopyStatus[];
  /** Null (or absent, from an older daemon) when the set has no drill and was never drilled. */
  drills?: DrillStatus | null;
}

export interface Status {
  daemon: { running: boolean; pid: number | null; host: string | null; since: string | null };
  sets: SetStatus[];
}

export interface Backup {
  name: string;
  path: string;
  set: string;
  type: string | null;
  mode: string | null;
  parent: string | null;
  files: number | null;
  bytes: number | null;
  diskBytes: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  warnings: { path: string; code: string; message: string }[] | null;
  state: string;
  reason: string | null;
}

export interface FileEntry {
  path: string;
  name: string;
  kind: "file" | "dir" | "symlink";
  size?: number;
  mtime?: string;
}

export interface PruneItem {
  name: string;
  why: string;
}

export interface PrunePreview {
  /** No keep policy: every backup is kept. */
  policy: Record<string, number> | null;
  delete: PruneItem[];
  keep: PruneItem[];
  broken: PruneItem[];
}

/** What a restore would do to its target (POST …/restore/plan): nothing written. */
export interface RestorePlan {
  backup: string;
  target: string;
  existing: number | null;
  replaces: number;
  sample: string[];
  note: string;
}

export interface Keep {
  last?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
}

/** A set's settings as in the config (the keys of README "Config"), as the window edits them. */
export interface SetSettings {
  letter: string;
  source: string;
  automatic: boolean;
  folder: string;
  type: "separate" | "compressed";
  mode: "full" | "incremental";
  frequency: string;
  day?: string | number | undefined;
  time: string;
  every?: string | undefined;
  copies: string[];
  keep?: Keep | undefined;
  fullEvery?: number | undefined;
}

export type Destination = { type: "local" | "sftp" | "s3" | "smb" } & Record<string, unknown>;

export interface SystemSettings {
  root?: string;
  serviceLogin: { domain?: string; user: string; passwordSet: boolean } | null;
  /** `server.timezone` as in the file; "" when absent (the machine's: `timezoneInEffect`). */
  timezone: string;
  timezoneInEffect: string;
  concurrency: number;
  destinations: Record<string, Destination>;
}

export interface Settings {
  hash: string;
  file?: string;
  sets: (SetSettings & { id: string })[];
  system: SystemSettings;
}

const listOf = <T>(data: unknown, ...keys: string[]): T[] => {
  if (Array.isArray(data)) return data as T[];
  for (const k of keys) {
    const v = (data as Record<string, unknown> | null)?.[k];
    if (Array.isArray(v)) return v as T[];
  }
  return [];
};

function normaliseSettings(raw: {
  hash: string;
  file?: string;
  sets: Record<string, SetSettings> | (SetSettings & { id?: string; set?: string })[];
  system: Partial<SystemSettings> & Record<string, unknown>;
}): Settings {
  const sets = Array.isArray(raw.sets)
    ? raw.sets.map((s) => ({ ...s, id: s.id ?? s.set ?? "" }))
    : Object.entries(raw.sets).map(([id, s]) => ({ ...s, id }));
  const sys = raw.system ?? {};
  const login = (sys.serviceLogin ?? null) as
    | ({ domain?: string; user: string; passwordSet?: boolean } & Record<string, unknown>)
    | null;
  return {
    hash: raw.hash,
    ...(typeof raw.file === "string" ? { file: raw.file } : {}),
    sets: sets.map((s) => ({ ...s, copies: s.copies ?? [] })),
    system: {
      ...(typeof sys.root === "string" ? { root: sys.root } : {}),
      serviceLogin: login
        ? {
            user: login.user,
            ...(login.domain ? { domain: login.domain } : {}),
            passwordSet: login.passwordSet ?? login.password !== undefined,
          }
        : null,
      timezone: (sys.timezone as string | null | undefined) ?? "",
      timezoneInEffect:
        (sys.timezoneInEffect as string | undefined) ?? (sys.timezone as string | undefined) ?? "",
      concurrency: (sys.concurrency as number | undefined) ?? 1,
      destinations: (sys.destinations as Record<string, Destination> | undefined) ?? {},
    },
  };
}

/** One run as the API sends it (`GET /api/runs/:id`, the `run` event): test/web-api-contract.test.ts keeps it the server's. */
export interface WireRunState {
  run: RunInfo;
  state: "running" | "ended";
  endedAt: string | null;
  ok: boolean | null;
  result: Record<string, unknown> | null;
  error: RunError | null;
}

function normaliseRun(r: WireRunState): RunState {
  return {
    info: r.run,
    ended: r.state === "ended",
    result: r.result ?? undefined,
    error: r.error ?? undefined,
  };
}

export interface PlannedRun {
  at: string;
  /** The time as the server's zone writes it. */
  local?: string;
  mode?: string;
}

/** The next run times (`{timezone, chain, runs: [{at, local, mode}]}`). */
function normaliseNext(raw: unknown): PlannedRun[] {
  return listOf<string | PlannedRun>(raw, "runs", "next", "times").map((x) =>
    typeof x === "string" ? { at: x } : x,
  );
}

/** The prune preview as the API sends it (checked against the server's schema by test/web-api-contract.test.ts). */
export interface WirePrunePreview {
  policy: Record<string, number> | null;
  keep: { name: string; reasons: string[] }[];
  remove: { name: string; why: string; diskBytes: number }[];
  broken: { name: string; reason: string }[];
}

function normalisePrune(r: WirePrunePreview): PrunePreview {
  return {
    policy: r.policy,
    delete: r.remove.map((x) => ({ name: x.name, why: x.why })),
    keep: r.keep.map((x) => ({ name: x.name, why: x.reasons.join(", ") })),
    broken: r.broken.map((x) => ({ name: x.name, why: x.reason })),
  };
}

/** One folder level of a backup as the API sends it (checked like the others). */
export interface WireFiles {
  entries: { name: string; path: string; kind: FileEntry["kind"]; size: number | null; mtime: string }[];
}

function normaliseFiles(r: WireFiles): FileEntry[] {
  return r.entries.map((e) => ({
    path: e.path,
    name: e.name,
    kind: e.kind,
    ...(e.size === null ? {} : { size: e.size }),
    mtime: e.mtime,
  }));
}

export interface RestoreBody {
  backup?: string;
  dest?: string;
  to: string;
  paths?: string[];
  overwrite?: boolean;
}

/* ---------- the routes ---------- */

export const routes = {
  session: () => api.get<Session>("/api/session"),
  login: (user: string, password: string) => api.post<Session>("/api/login", { user, password }),
  logout: () => api.post<unknown>("/api/logout"),
  setup: (token: string, user: string, password: string) =>
    api.post<Session>("/api/setup", { token, user, password }),

  status: () => api.get<Status>("/api/status"),
  history: async (f: { set?: string; result?: string; since?: string; until?: string; limit?: number }) =>
    listOf<RunRecord>(await api.get<unknown>(`/api/history${query(f)}`), "runs", "history"),
  runs: async () => listOf<RunInfo>(await api.get<unknown>("/api/runs"), "runs"),
  run: async (id: string) => normaliseRun(await api.get<WireRunState>(`/api/runs/${enc(id)}`)),
  cancel: (id: string) => api.del<unknown>(`/api/runs/${enc(id)}`),
  backupNow: (set: string, opts: { mode?: string; type?: string } = {}) =>
    api.post<RunInfo>(`/api/sets/${enc(set)}/backup`, opts),

  backups: async (set: string, dest?: string) =>
    (await api.get<{ backups: Backup[] }>(`/api/sets/${enc(set)}/backups${query({ dest })}`)).backups,
  files: async (set: string, name: string, dir: string, dest?: string) =>
    normaliseFiles(
      await api.get<WireFiles>(
        `/api/sets/${enc(set)}/backups/${enc(name)}/files${query({ dest, path: dir })}`,
      ),
    ),
  restore: (set: string, body: RestoreBody) => api.post<RunInfo>(`/api/sets/${enc(set)}/restore`, body),
  restorePlan: (set: string, body: RestoreBody) =>
    api.post<RestorePlan>(`/api/sets/${enc(set)}/restore/plan`, body),
  verify: (set: string, body: { backup?: string; dest?: string }) =>
    api.post<RunInfo>(`/api/sets/${enc(set)}/verify`, body),
  prunePreview: async (set: string, dest?: string) =>
    normalisePrune(await api.get<WirePrunePreview>(`/api/sets/${enc(set)}/prune-preview${query({ dest })}`)),

  settings: async () => normaliseSettings(await api.get("/api/settings")),
  nextRuns: async (set: string, settings: Partial<SetSettings>) =>
    normaliseNext(await api.post<unknown>("/api/settings/next", { set, settings })),
  /** The window's OK: every changed tab in one edit of the file, all written or none. */
  saveSets: (hash: string, sets: Record<string, SetSettings>) =>
    api.put<{ hash: string }>("/api/settings/sets", { hash, sets }),
  saveSet: (set: string, hash: string, settings: SetSettings) =>
    api.put<{ hash: string }>(`/api/settings/sets/${enc(set)}`, { hash, settings }),
  saveSystem: (body: {
    hash: string;
    serviceLogin?: { domain?: string | null; user: string; password?: string } | null;
    timezone?: string | null;
    concurrency?: number;
  }) => api.put<{ hash: string }>("/api/settings/system", body),
  saveDestination: (name: string, hash: string, destination: Record<string, unknown>) =>
    api.put<{ hash: string }>(`/api/settings/destinations/${enc(name)}`, { hash, destination }),
  removeDestination: (name: string, hash: string) =>
    api.del<{ hash: string }>(`/api/settings/destinations/${enc(name)}${query({ hash })}`),
  testDestination: (body: { name: string } | { destination: Record<string, unknown>; name?: string }) =>
    api.post<{ ok: boolean; where?: string; backups?: number; error?: RunError }>(
      "/api/destinations/test",
      body,
    ),
};
