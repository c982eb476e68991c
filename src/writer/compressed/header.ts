import { BschedError } from "../../core/errors.ts";
import { openRegular } from "../../platform/fsutil.ts";
import type { Compressor } from "./frames.ts";

/**
 * The self-extracting file: a POSIX sh script, then the payload (a compressed POSIX tar) from
 * byte PAYLOAD_START (1-based, for `tail -c +N`). Size and digest are not known when the script
 * is written: they are fixed-width fields patched in place at the end (docs/design.md).
 */
export const SIZE_WIDTH = 16;
const DIGEST_PLACEHOLDER = "0".repeat(64);

export interface HeaderFields {
  name: string;
  set: string;
  mode: string;
  parent: string | null;
  compressor: Compressor;
  manifestMember: string;
  deletions: string[];
}

export interface HeaderText {
  bytes: Buffer;
  /** Byte offsets of the fixed-width fields to patch. */
  sizeAt: number;
  digestAt: number;
}

/** A string as one shell word: single quotes, with each ' written as '\''. */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

function script(f: HeaderFields, start: string): string {
  const del = f.deletions.length
    ? f.deletions.map((d) => `  rm -rf -- ${shQuote(d)}`).join("\n")
    : "  : # none";
  const install = `Debian/Ubuntu: apt-get install ${f.compressor}; Fedora/RHEL: dnf install ${f.compressor}; macOS: brew install ${f.compressor}`;
  return `#!/bin/sh
# bsched self-extracting backup ${f.name} (set ${f.set}, ${f.mode}${f.parent ? `, parent ${f.parent}` : ""}).
# Needs only POSIX sh, tar and ${f.compressor}.  sh THIS_FILE --help
# By hand: tail -c +PAYLOAD_START THIS_FILE | ${f.compressor} -dc | tar -xpf - -C DIR
#   (then remove DIR/${f.manifestMember}; for an incremental, first remove the paths in apply_deletions below)
BSCHED_FORMAT=1
BACKUP_NAME=${shQuote(f.name)}
BACKUP_SET=${shQuote(f.set)}
BACKUP_MODE=${f.mode}
BACKUP_PARENT=${shQuote(f.parent ?? "")}
COMPRESSOR=${f.compressor}
MANIFEST_MEMBER=${shQuote(f.manifestMember)}
PAYLOAD_START=${start}
PAYLOAD_SIZE=${"".padEnd(SIZE_WIDTH)}
PAYLOAD_SHA256=${DIGEST_PLACEHOLDER}
set -u
me=$0
die() { printf 'bsched: %s\\n' "$*" >&2; exit 1; }
usage() {
  cat <<EOT
$BACKUP_NAME: a bsched $BACKUP_MODE backup of set $BACKUP_SET\${BACKUP_PARENT:+ (after $BACKUP_PARENT)}
  sh $me --target DIR   extract into DIR; for a chain, run each file oldest first into the same DIR
  sh $me --list         list the payload
  sh $me --check        check the payload against the size and sha256 recorded here
  sh $me --help         this text
With bsched: bsched restore --from $me --to DIR
EOT
}
need() {
  command -v "$COMPRESSOR" >/dev/null 2>&1 && return 0
  printf '%s\\n' "bsched: this backup is compressed with $COMPRESSOR, which is not installed here." \\
    "  Install it (${install})," \\
    "  or restore it with bsched instead: bsched restore --from $me --to DIR" >&2
  exit 3
}
payload() { tail -c +"$PAYLOAD_START" "$me"; }
unpack() { payload | "$COMPRESSOR" -dc; }
sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 | cut -d ' ' -f 1
  elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 | sed 's/^.*= *//'
  else return 2; fi
}
check() {
  size=$(payload | wc -c | tr -d ' ')
  [ "$size" = "$PAYLOAD_SIZE" ] || die "DAMAGED: $me: payload is $size bytes, expected $PAYLOAD_SIZE (truncated or altered)"
  if sum=$(payload | sha256_of); then
    [ "$sum" = "$PAYLOAD_SHA256" ] || die "DAMAGED: $me: payload sha256 is $sum, expected $PAYLOAD_SHA256"
  else
    echo "bsched: no sha256 tool here (sha256sum, shasum, openssl): checking decompression only" >&2
  fi
  unpack | tar -tf - >/dev/null || die "DAMAGED: $me: payload does not decompress or is not a tar"
  echo "ok: $me ($BACKUP_NAME, $PAYLOAD_SIZE bytes)"
}
# Paths the parent had that this state has not (or has as another kind): removed before extracting.
apply_deletions() {
${del}
}
extract() {
  mkdir -p "$1" || die "cannot create $1"
  (cd "$1" && apply_deletions) || die "could not apply the deletions in $1"
  unpack | (cd "$1" && tar -xpf -) || die "extraction into $1 failed"
  rm -f "$1/$MANIFEST_MEMBER"
  echo "extracted $BACKUP_NAME into $1"
}
case "\${1:-}" in
  --target) [ $# -ge 2 ] || die "usage: sh $me --target DIR"; need; extract "$2" ;;
  --list) need; unpack | tar -tvf - ;;
  --check) need; check ;;
  --help|-h|"") usage ;;
  *) die "unknown option $1 (see: sh $me --help)" ;;
esac
exit $?
`;
}

export function renderHeader(f: HeaderFields): HeaderText {
  // PAYLOAD_START is the header's own length + 1; its width is fixed first so the length is stable.
  const probe = Buffer.from(script(f, "".padEnd(SIZE_WIDTH)));
  const start = String(probe.length + 1).padEnd(SIZE_WIDTH);
  const text = script(f, start);
  const bytes = Buffer.from(text);
  return {
    bytes,
    sizeAt: bytes.indexOf(`\nPAYLOAD_SIZE=`) + "\nPAYLOAD_SIZE=".length,
    digestAt: bytes.indexOf(`\nPAYLOAD_SHA256=`) + "\nPAYLOAD_SHA256=".length,
  };
}

export interface ParsedHeader {
  name: string;
  compressor: Compressor;
  payloadOffset: number;
  payloadSize: number;
  payloadSha256: string;
  manifestMember: string;
}

/** Read the fields of a self-extracting file's header (the first few KiB are enough). */
export function parseHeader(head: string): ParsedHeader | undefined {
  if (!head.startsWith("#!/bin/sh\n# bsched self-extracting backup")) return undefined;
  const field = (k: string) => new RegExp(`\\n${k}=([^\\n]*)`).exec(head)?.[1]?.trim();
  const unquote = (v: string | undefined) =>
    v?.startsWith("'") ? v.slice(1, -1).replaceAll("'\\''", "'") : v;
  const start = Number(field("PAYLOAD_START"));
  const size = Number(field("PAYLOAD_SIZE"));
  const compressor = field("COMPRESSOR");
  const name = unquote(field("BACKUP_NAME"));
  const member = unquote(field("MANIFEST_MEMBER"));
  const sha = field("PAYLOAD_SHA256");
  if (
    field("BSCHED_FORMAT") !== "1" ||
    !name ||
    !member ||
    !sha ||
    (compressor !== "zstd" && compressor !== "gzip")
  )
    return undefined;
  if (!Number.isSafeInteger(start) || start < 1 || !Number.isSafeInteger(size)) return undefined;
  return {
    name,
    compressor,
    payloadOffset: start - 1,
    payloadSize: size,
    payloadSha256: sha,
    manifestMember: member,
  };
}

/**
 * Read and check the header of a self-extracting backup file: a regular file, never read through
 * a link nor waited on as a FIFO (backup folders are untrusted input; see `openRegular`).
 */
export async function readSelfExtractingHeader(file: string): Promise<ParsedHeader> {
  const fh = await openRegular(file);
  try {
    const buf = Buffer.alloc(16384);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const header = parseHeader(buf.subarray(0, bytesRead).toString("latin1"));
    if (!header) {
      throw new BschedError(
        "MANIFEST_INVALID",
        `${file} is not a bsched self-extracting backup (its header is missing or damaged)`,
        {
          hint: "give a backup folder or its .sh file",
        },
      );
    }
    return header;
  } finally {
    await fh.close();
  }
}
