import { BschedError, isErrnoException } from "../../core/errors.ts";

/** What an S3 call failed with, as the SDK reports it (service errors carry Code/$metadata). */
interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export interface S3Where {
  /** The destination's name in the config. */
  name: string;
  /** Its endpoint, or "AWS" when none is set. */
  endpoint: string;
  bucket: string;
}

/** The error code of an S3 failure: its Code, else its name (HEAD answers have no body, so no Code). */
export function codeOf(e: unknown): string | undefined {
  const s = e as SdkError;
  return s?.Code ?? s?.name;
}

export function statusOf(e: unknown): number | undefined {
  return (e as SdkError)?.$metadata?.httpStatusCode;
}

/** A missing object: NoSuchKey on GET, a bare 404 on HEAD. */
export function isNotFound(e: unknown): boolean {
  const c = codeOf(e);
  return c === "NoSuchKey" || c === "NotFound" || (statusOf(e) === 404 && c !== "NoSuchBucket");
}

/** A conditional write refused (If-None-Match / If-Match): 412. */
export function isPreconditionFailed(e: unknown): boolean {
  return codeOf(e) === "PreconditionFailed" || statusOf(e) === 412;
}

/** An ENOENT-coded error (what callers of a Destination test for a missing backup or file). */
export function notFound(what: string): Error {
  return Object.assign(new Error(`${what}: no such file`), { code: "ENOENT" });
}

const NETWORK = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "ECONNABORTED",
  "TimeoutError",
  "RequestTimeout",
]);

/**
 * An S3 failure worded for the user: the destination named, the fix in the hint, never a
 * credential (the SDK's own message is kept only for errors that cannot hold one).
 */
export function s3Error(e: unknown, w: S3Where, doing: string): Error {
  if (e instanceof BschedError) return e;
  const code = codeOf(e);
  const status = statusOf(e);
  const errno = isErrnoException(e) ? e.code : undefined;
  const key = `destinations.${w.name}`;
  if (
    code === "InvalidAccessKeyId" ||
    code === "SignatureDoesNotMatch" ||
    (status === 403 && code !== "AccessDenied")
  ) {
    return new BschedError(
      "AUTH_FAILED",
      `destination ${w.name}: ${w.endpoint} refused its credentials (${code ?? `HTTP ${status}`}) while ${doing}`,
      {
        hint: `check ${key}.accessKeyId and the secret key in ${key}.secretAccessKey (\`bsched secret set NAME\` stores a new one)`,
        cause: undefined,
      },
    );
  }
  if (code === "AccessDenied") {
    return new BschedError(
      "PERMISSION_DENIED",
      `destination ${w.name}: access denied to bucket ${w.bucket} at ${w.endpoint} while ${doing}`,
      {
        hint: `give the access key ${key}.accessKeyId read, write, list and delete rights on bucket ${w.bucket}`,
      },
    );
  }
  if (code === "NoSuchBucket") return missingBucket(w);
  if (code === "BadDigest" || code === "InvalidDigest" || code === "InvalidPart") {
    // The server compared what arrived with the Content-MD5 sent (or a part with the digest the
    // completion names) and refused it: nothing damaged was stored.
    return new BschedError(
      "COPY_FAILED",
      `destination ${w.name}: ${w.endpoint} refused the bytes it received while ${doing}: they differ from those sent (${code})`,
      { hint: `run it again; if it keeps failing, check the network between here and ${w.endpoint}` },
    );
  }
  if (code === "QuotaExceeded" || code === "EntityTooLarge" || code === "InsufficientCapacity") {
    return new BschedError(
      "DISK_FULL",
      `destination ${w.name}: ${w.endpoint} refused the data (${code}) while ${doing}`,
      {
        hint: `free space or raise the quota of bucket ${w.bucket}`,
      },
    );
  }
  if (
    (errno !== undefined && NETWORK.has(errno)) ||
    (code !== undefined && NETWORK.has(code)) ||
    isCutShort(e)
  ) {
    return new BschedError(
      "UNREACHABLE",
      `destination ${w.name}: cannot reach the S3 service at ${w.endpoint} while ${doing} (${errno ?? code})`,
      { hint: `is the S3 service at ${w.endpoint} running and reachable from here? check ${key}.endpoint` },
    );
  }
  const m = (e as SdkError)?.message;
  return new BschedError(
    "IO",
    `destination ${w.name}: ${w.endpoint} bucket ${w.bucket}: ${doing} failed: ${code ?? "error"}${status ? ` (HTTP ${status})` : ""}${m && m !== "UnknownError" ? `: ${m}` : ""}`,
    { hint: "run it again; if it keeps failing, check the S3 service's logs" },
  );
}

/** A connection dropped mid-answer ("socket hang up", "aborted", a premature close). */
function isCutShort(e: unknown): boolean {
  const m = (e as SdkError)?.message ?? "";
  return /socket hang up|aborted|premature close|other side closed/i.test(m);
}

/**
 * An object (or part) whose ETag is not the MD5 the bytes sent make: the server stored something
 * else. Buckets that encrypt with SSE-KMS or SSE-C answer ETags that are no MD5: such a
 * destination needs `verify: read`.
 */
export function etagMismatch(w: S3Where, what: string, got: string | undefined, want: string): BschedError {
  return new BschedError(
    "COPY_FAILED",
    `destination ${w.name}: ${w.endpoint} bucket ${w.bucket} stored ${what} with ETag ${got || "(none)"} where the bytes sent make ${want}: what it stored is not what was sent`,
    {
      hint: `run it again; if it keeps failing, check the S3 service at ${w.endpoint} (a bucket encrypted with SSE-KMS or SSE-C answers other ETags: set destinations.${w.name}.verify: read)`,
    },
  );
}

export function missingBucket(w: S3Where): BschedError {
  return new BschedError(
    "DESTINATION_MISSING",
    `destination ${w.name}: bucket ${w.bucket} does not exist at ${w.endpoint}; bsched never creates buckets`,
    {
      hint: `create it (e.g. \`aws s3 mb s3://${w.bucket} --endpoint-url ${w.endpoint}\`), or fix destinations.${w.name}.bucket`,
    },
  );
}
