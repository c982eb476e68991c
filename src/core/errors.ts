/**
 * Every failure the user can act on is a BschedError with a stable code. The CLI maps
 * `exitCode` to the process exit status (docs/design.md "Exit codes and errors": 1 failed,
 * 2 bad usage or config).
 */
export type ErrorCode =
  | "CONFIG_NOT_FOUND"
  | "CONFIG_INVALID"
  | "CONFIG_EXISTS"
  | "CONFIG_CHANGED"
  | "USAGE"
  | "SET_UNKNOWN"
  | "SOURCE_MISSING"
  | "BACKUP_NOT_FOUND"
  | "CHAIN_BROKEN"
  | "MANIFEST_INVALID"
  | "UNSAFE_PATH"
  | "TARGET_NOT_EMPTY"
  | "RESTORE_MISMATCH"
  | "LOCKED"
  | "CATALOG"
  | "HOOK_FAILED"
  | "DESTINATION_MISSING"
  | "DISK_FULL"
  | "PERMISSION_DENIED"
  | "IO"
  | "CANCELLED"
  | "COPY_FAILED"
  | "AUTH_FAILED"
  | "HOST_KEY_MISMATCH"
  | "UNREACHABLE"
  | "SECRET_MISSING"
  /** The secret store or its key cannot be used: damaged, another key, a key file others can read. */
  | "SECRET_UNREADABLE"
  /** The API (src/api): no valid session; a change without the session's CSRF token; too many logins. */
  | "UNAUTHENTICATED"
  | "CSRF"
  | "RATE_LIMITED"
  /** The window's users (`bsched user`, docs/design.md "Security"): a name taken or unknown; users.json unreadable. */
  | "USER_EXISTS"
  | "USER_NOT_FOUND"
  | "USERS_UNREADABLE"
  /** The API: a request that names nothing there is (a run, a route), or is malformed. */
  | "NOT_FOUND"
  | "BAD_REQUEST"
  /** /metrics from another machine when no server.metrics.token is set (src/api/routes/metrics.ts). */
  | "FORBIDDEN"
  /** `bsched service`: the unit cannot be installed or removed (not root, no systemd, useradd failed). */
  | "SERVICE"
  /** A notification (email, webhook) could not be sent: never fails a backup; `bsched notify test` exits 1 with it. */
  | "NOTIFY_FAILED"
  /** A restore drill (issue 14) whose restore or one of whose checks failed: the backup is not proven restorable. */
  | "DRILL_FAILED";

/** A bad value's place in the config (["sets","archive","time"]) and what is wrong with it: shown beside its field. */
export interface FieldError {
  path: (string | number)[];
  message: string;
}

export class BschedError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  /** What the user can do about it; printed under the message. */
  readonly hint: string | undefined;
  /** For a bad config or request: each field at fault (the window shows each beside its field). */
  readonly fields: FieldError[] | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { hint?: string; exitCode?: number; cause?: unknown; fields?: FieldError[] } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "BschedError";
    this.code = code;
    this.hint = options.hint;
    this.fields = options.fields;
    this.exitCode =
      options.exitCode ?? (code.startsWith("CONFIG") || code === "USAGE" || code === "SET_UNKNOWN" ? 2 : 1);
  }
}

export const EXIT = { ok: 0, failed: 1, usage: 2, warnings: 3 } as const;

export function isErrnoException(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === "string";
}

export function errnoCode(e: unknown): string | undefined {
  return isErrnoException(e) ? e.code : undefined;
}
