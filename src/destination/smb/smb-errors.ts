import { BschedError } from "../../core/errors.ts";

/** What a message needs to name an SMB destination and the login it used (never the password). */
export interface SmbPlace {
  /** The destination's name in the config. */
  name: string;
  /** `//server/share`. */
  share: string;
  server: string;
  port: number;
  /** `DOMAIN\user` (or `user`). */
  account: string;
  /** Where the login comes from: `server.serviceLogin` or `destinations.NAME.login`. */
  loginKey: string;
  /** The config value of the password (`secret:NAME`, or a plain value: then never shown). */
  passwordRef: string;
}

/** The first NT_STATUS code smbclient printed, if any. */
export function ntStatusOf(lines: string[]): string | undefined {
  for (const l of lines) {
    const m = /\b(NT_STATUS_[A-Z0-9_]+)\b/.exec(l);
    if (m) return m[1];
  }
  return undefined;
}

const NOT_FOUND = new Set([
  "NT_STATUS_OBJECT_NAME_NOT_FOUND",
  "NT_STATUS_OBJECT_PATH_NOT_FOUND",
  "NT_STATUS_NO_SUCH_FILE",
  "NT_STATUS_NOT_FOUND",
]);

/** The server and the network: reaching it failed or the connection dropped. */
const UNREACHABLE = new Set([
  "NT_STATUS_CONNECTION_REFUSED",
  "NT_STATUS_CONNECTION_DISCONNECTED",
  "NT_STATUS_CONNECTION_RESET",
  "NT_STATUS_CONNECTION_ABORTED",
  "NT_STATUS_HOST_UNREACHABLE",
  "NT_STATUS_NETWORK_UNREACHABLE",
  "NT_STATUS_IO_TIMEOUT",
  "NT_STATUS_PIPE_BROKEN",
  "NT_STATUS_INVALID_NETWORK_RESPONSE",
  "NT_STATUS_BAD_NETWORK_PATH",
  "NT_STATUS_UNSUCCESSFUL",
  "NT_STATUS_END_OF_FILE",
]);

/** The connection dropped or could not be made: a session that says so is of no more use. */
export const isConnectionLost = (status: string | undefined) =>
  status !== undefined && UNREACHABLE.has(status);

export const isNotFound = (status: string | undefined) => status !== undefined && NOT_FOUND.has(status);

/** A missing file or folder: an error coded ENOENT, as the Destination interface asks. */
export function notFound(where: string, status: string): Error {
  return Object.assign(new Error(`${where}: not found on the share (${status})`), { code: "ENOENT" });
}

function secretHint(p: SmbPlace): string {
  const m = /^secret:(.+)$/.exec(p.passwordRef);
  return m ? `\`bsched secret set ${m[1]}\`` : `the password in ${p.loginKey}.password`;
}

/**
 * smbclient's failure as a BschedError naming the destination and the fix. `doing` says what
 * failed (`connecting`, `uploading …`); `lines` is what smbclient printed (never holds the
 * password: smbclient reads it from the authentication file and never prints it).
 */
export function smbError(p: SmbPlace, doing: string, status: string | undefined, lines: string[]): Error {
  const at = `destination ${p.name} (${p.share}, port ${p.port})`;
  const said =
    lines.find((l) => l.includes("NT_STATUS_")) ?? lines.filter((l) => l.trim() !== "").at(-1) ?? "";
  const raw = said === "" ? "" : ` [smbclient: ${said.trim()}]`;
  switch (status) {
    case "NT_STATUS_LOGON_FAILURE":
    case "NT_STATUS_WRONG_PASSWORD":
    case "NT_STATUS_NO_SUCH_USER":
    case "NT_STATUS_ACCOUNT_DISABLED":
    case "NT_STATUS_ACCOUNT_LOCKED_OUT":
    case "NT_STATUS_PASSWORD_EXPIRED":
    case "NT_STATUS_ACCOUNT_RESTRICTION":
      return new BschedError("AUTH_FAILED", `${at}: the server refused the login ${p.account} (${status})`, {
        hint: `check the domain, user and password in ${p.loginKey} (store the password again with ${secretHint(p)}); the domain or workgroup must be the server's`,
      });
    case "NT_STATUS_BAD_NETWORK_NAME":
      return new BschedError("DESTINATION_MISSING", `${at}: the server has no share named ${p.share}${raw}`, {
        hint: `check destinations.${p.name}.share (\`smbclient -L //${p.server} -p ${p.port} -U ${p.account}\` lists the shares)`,
      });
    case "NT_STATUS_DISK_FULL":
    case "NT_STATUS_QUOTA_EXCEEDED":
      return new BschedError("DISK_FULL", `${at}: the share ${p.share} is full, ${doing}${raw}`, {
        hint: `free space on ${p.share} (remove old backups there: \`bsched prune SET\`, or a smaller \`keep\` for destination ${p.name}), or ask its administrator for more room`,
      });
    case "NT_STATUS_ACCESS_DENIED":
    case "NT_STATUS_NETWORK_ACCESS_DENIED":
    case "NT_STATUS_MEDIA_WRITE_PROTECTED":
      return new BschedError("PERMISSION_DENIED", `${at}: access denied ${doing}${raw}`, {
        hint: `give ${p.account} read and write access to ${p.share} (share and folder permissions), or use another login in ${p.loginKey}`,
      });
    default:
      if (status !== undefined && UNREACHABLE.has(status)) {
        return new BschedError("UNREACHABLE", `${at}: cannot reach ${p.server}:${p.port}, ${doing}${raw}`, {
          hint: `check that the SMB server ${p.server} is up and listening on port ${p.port} (destinations.${p.name}.port), and the network between; the copy is tried again later`,
        });
      }
      return new BschedError("IO", `${at}: ${doing} failed${raw}`, {
        hint: `check the share ${p.share} and the server's logs; then run it again`,
      });
  }
}
