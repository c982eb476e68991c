import { BschedError } from "../../core/errors.ts";
import type { Destination, ReadHandle } from "../../destination/destination.ts";
import { RESTORED_MARKER } from "../../source/setlock.ts";
import { applyBlocksLine } from "../blocks-script.ts";
import type { Compressor } from "./frames.ts";
import { selfExtractingName } from "./names.ts";

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
  /** sha256 of the parent's manifest.json: what the target's marker must name before an incremental. */
  parentDigest?: string | null;
  /** The backups before this one in its chain, oldest first (the order a refusal prints). */
  ancestors?: string[];
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

/**
 * Reads the embedded manifest (one entry per line, docs/design.md) and prints, for each file this
 * backup stores, a line for `sha256sum -c` (fmt=c: `SHA256  PATH`, escaped the GNU way when the
 * path holds a backslash or newline) or a shell line `member 'PATH' SHA256` (a ' written '\'';
 * q is the quote: the program itself sits in single quotes). To the file `status` it writes
 * `members_expected N`, after `manifest_damaged;` if the manifest is cut short or malformed.
 * JSON string escapes are decoded.
 */
const MEMBERS_AWK = String.raw`BEGIN { q = sprintf("%c", 39); hex = "0123456789abcdef"; n = 0; bad = 0; ended = 0 }
NR == 1 && index($0, "{\"header\":") != 1 { bad = 1 }
/^"deletions":/ { ended = 1 }
index($0, "{\"path\":\"") == 1 {
  s = $0; i = 10; p = ""; e = ""; esc = 0; closed = 0
  while (i <= length(s)) {
    c = substr(s, i, 1)
    if (c == "\"") { closed = 1; break }
    if (c == "\\") {
      i++; c = substr(s, i, 1)
      if (c == "n") c = "\n"; else if (c == "t") c = "\t"; else if (c == "r") c = "\r"
      else if (c == "b") c = "\b"; else if (c == "f") c = "\f"
      else if (c == "u") {
        v = 0
        for (k = 1; k <= 4; k++) v = v * 16 + index(hex, tolower(substr(s, i + k, 1))) - 1
        i += 4; c = (v > 0 && v < 128) ? sprintf("%c", v) : "?"
      }
    }
    if (c == "\\") { e = e "\\\\"; esc = 1 } else if (c == "\n") { e = e "\\n"; esc = 1 } else e = e c
    p = p (c == q ? q "\\" q q : c); i++
  }
  if (!closed) { bad = 1; next }
  rest = substr(s, i + 1)
  if (rest !~ /"kind":"file"/ || index(rest, "\"from\":\"" name "\"") == 0) next
  if (index(rest, "\"blocks\":") > 0 && index(rest, "\"base\":\"" name "\"") == 0) next
  if (match(rest, /"sha256":"[0-9a-f]+"/) == 0) { bad = 1; next }
  sha = substr(rest, RSTART + 10, RLENGTH - 11); n++
  if (fmt == "c") print (esc ? "\\" : "") sha "  " e
  else print "member " q p q " " sha
}
END { print (bad || !ended ? "manifest_damaged; " : "") "members_expected " n > status }`;

function script(f: HeaderFields, start: string): string {
  const del = f.deletions.length
    ? f.deletions.map((d) => `  rm -rf -- ${shQuote(d)}`).join("\n")
    : "  : # none";
  const install = `Debian/Ubuntu: apt-get install ${f.compressor}; Fedora/RHEL: dnf install ${f.compressor}; macOS: brew install ${f.compressor}`;
  return `#!/bin/sh
# bsched self-extracting backup ${f.name} (set ${f.set}, ${f.mode}${f.parent ? `, parent ${f.parent}` : ""}).
# Needs only POSIX sh, tar, ${f.compressor} and a sha256 tool (sha256sum, shasum or openssl).  sh THIS_FILE --help
# By hand: tail -c +PAYLOAD_START THIS_FILE | ${f.compressor} -dc | tar -xpf - -C DIR
#   (then remove DIR/${f.manifestMember}; for an incremental, first remove the paths in apply_deletions below)
BSCHED_FORMAT=1
BACKUP_NAME=${shQuote(f.name)}
BACKUP_SET=${shQuote(f.set)}
BACKUP_MODE=${f.mode}
BACKUP_PARENT=${shQuote(f.parent ?? "")}
BACKUP_PARENT_DIGEST=${shQuote(f.parentDigest ?? "")}
COMPRESSOR=${f.compressor}
MANIFEST_MEMBER=${shQuote(f.manifestMember)}
PAYLOAD_START=${start}
PAYLOAD_SIZE=${"".padEnd(SIZE_WIDTH)}
PAYLOAD_SHA256=${DIGEST_PLACEHOLDER}
# The backups before this one, oldest first: the order to apply them in.
BACKUP_CHAIN=${shQuote((f.ancestors ?? (f.parent ? [f.parent] : [])).join(" "))}
MARKER=${RESTORED_MARKER}
set -u
me=$0
die() { printf 'bsched: %s\\n' "$*" >&2; exit 1; }
say() { printf '%s\\n' "$*"; }
usage() {
  cat <<EOT
$BACKUP_NAME: a bsched $BACKUP_MODE backup of set $BACKUP_SET\${BACKUP_PARENT:+ (after $BACKUP_PARENT)}
  sh $me --target DIR [--force] [--no-check]
      extract into DIR; for a chain, run each file oldest first into the same DIR. The whole
      payload is first extracted into a staging folder beside DIR and every file checked
      against its sha256: DIR is touched only when all are intact. DIR/$MARKER then names
      this backup; an incremental applies only onto a DIR whose $MARKER names its parent.
      --force     apply an incremental onto a DIR not at its parent's state
      --no-check  skip the sha256 checks (no sha256 tool here); size and decompression still checked
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
have_sha256() {
  command -v sha256sum >/dev/null 2>&1 || command -v shasum >/dev/null 2>&1 || command -v openssl >/dev/null 2>&1
}
sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 | cut -d ' ' -f 1
  elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 | sed 's/^.*= *//'
  else return 2; fi
}
check_size() {
  size=$(payload | wc -c | tr -d ' ')
  [ "$size" -lt "$PAYLOAD_SIZE" ] && die "DAMAGED: $me: payload truncated ($size of $PAYLOAD_SIZE bytes)"
  [ "$size" = "$PAYLOAD_SIZE" ] || die "DAMAGED: $me: payload is $size bytes, expected $PAYLOAD_SIZE (altered)"
}
check() {
  check_size
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
marker_field() { [ -f "$target/$MARKER" ] && sed -n "s/^$1=//p" "$target/$MARKER"; }
# Where the chain's file NAME.sh is: in its backup folder beside this one's, or beside this file.
locate() {
  d=.; case $me in */*) d=\${me%/*} ;; esac
  if [ -f "$d/../$1/$1.sh" ]; then say "$d/../$1/$1.sh"
  elif [ -f "$d/$1.sh" ]; then say "$d/$1.sh"
  else say "$1.sh (from its backup folder $1)"; fi
}
# An incremental holds only what changed since its parent: DIR must be at the parent's state.
check_parent() {
  [ "$BACKUP_MODE" = incremental ] || return 0
  at=$(marker_field backup); at_set=$(marker_field set); at_digest=$(marker_field digest)
  if [ "$at_set" = "$BACKUP_SET" ] && [ "$at" = "$BACKUP_PARENT" ] &&
    { [ "$at_digest" = "$BACKUP_PARENT_DIGEST" ] || [ -z "$at_digest" ]; }; then return 0; fi
  if [ -z "$at" ]; then why="$target holds no restored state (no $MARKER file)"
  elif [ "$at_set" != "$BACKUP_SET" ]; then why="$target is at backup $at of set $at_set"
  elif [ "$at" = "$BACKUP_NAME" ]; then why="$target is already at $BACKUP_NAME"
  elif [ "$at" = "$BACKUP_PARENT" ]; then why="$target is at another $at than this file's parent (manifest digest differs)"
  else why="$target is at $at"; fi
  if [ "$force" = 1 ]; then
    say "bsched: warning: $why, not at $BACKUP_PARENT: applying $BACKUP_NAME anyway (--force)" >&2
    return 0
  fi
  # Resume after the backup DIR is at when it is an earlier link of this chain; else start over.
  from=
  if [ -n "$at" ] && [ "$at_set" = "$BACKUP_SET" ] && [ "$at" != "$BACKUP_PARENT" ] && [ "$at" != "$BACKUP_NAME" ]; then
    for n in $BACKUP_CHAIN; do [ "$n" = "$at" ] && from=$n; done
  fi
  {
    say "bsched: refused: $why; $BACKUP_NAME is an incremental and applies only onto its parent $BACKUP_PARENT."
    if [ -n "$from" ]; then say "Apply the rest of its chain, oldest first:"
    else say "Apply its whole chain oldest first, into an empty folder:"; fi
    go=1; [ -n "$from" ] && go=0
    for n in $BACKUP_CHAIN; do
      [ "$go" = 1 ] && say "  sh $(locate "$n") --target $target"
      [ "$n" = "$from" ] && go=1
    done
    say "  sh $me --target $target"
    say "Or let bsched do the whole chain:"
    say "  bsched restore --from $me --to DIR     (--force applies this file anyway)"
  } >&2
  exit 1
}
cleanup() {
  [ -n "\${stage:-}" ] && [ -d "$stage" ] || return 0
  # Read-only folders of the payload must be writable to be removed (folders only: links never followed).
  find "$stage" -type d -exec chmod u+rwx {} + 2>/dev/null
  rm -rf -- "$stage"
}
# Damage found in staging: name it (the first 20), up to a count.
damaged=0
report() {
  damaged=$((damaged + 1))
  [ "$damaged" -le 20 ] && printf 'bsched: DAMAGED: %s\\n' "$*" >&2
  return 0
}
member() {
  if [ -f "$tree/$1" ] && [ ! -h "$tree/$1" ]; then
    [ "$nocheck" = 1 ] && return 0
    [ "$(sha256_of <"$tree/$1")" = "$2" ] || report "member $1: sha256 mismatch"
  else report "member $1: missing from the payload (truncated or damaged)"; fi
}
manifest_damaged() { report "the embedded manifest $MANIFEST_MEMBER is damaged or cut short"; }
members_expected() { expected=$1; }
# Every file this backup stores, hashed against the embedded manifest: in one run of
# sha256sum -c (or shasum -c) when there is one (a process per file is slow), else one by one.
check_members() {
  if command -v sha256sum >/dev/null 2>&1; then sumc="sha256sum -c"
  elif command -v shasum >/dev/null 2>&1; then sumc="shasum -a 256 -c"
  else sumc=; fi
  [ "$nocheck" = 1 ] && sumc=
  expected=0
  awk -v name="$BACKUP_NAME" -v fmt="\${sumc:+c}" -v status="$stage/status" '${MEMBERS_AWK}' "$m" >"$stage/members" &&
    [ -f "$stage/status" ] || { manifest_damaged; return; }
  . "$stage/status"
  if [ -z "$sumc" ]; then . "$stage/members"; return; fi
  [ "$expected" -gt 0 ] || return 0
  (cd "$tree" && $sumc -) <"$stage/members" >"$stage/sums-out" 2>/dev/null && return 0
  sed -n -e 's/^\\(.*\\): FAILED open or read$/member \\1: missing from the payload (truncated or damaged)/p' \\
    -e 's/^\\(.*\\): FAILED$/member \\1: sha256 mismatch/p' "$stage/sums-out" >"$stage/bad"
  while IFS= read -r line; do report "$line"; done <"$stage/bad"
  [ -s "$stage/bad" ] || report "the members could not be checked ($sumc failed)"
}
extract() {
  if [ "$nocheck" = 0 ] && ! have_sha256; then
    printf '%s\\n' "bsched: no sha256 tool here (sha256sum, shasum or openssl): cannot check $me before extracting it." \\
      "  Install one (coreutils or openssl), or pass --no-check to extract with size and decompression checks only." >&2
    exit 3
  fi
  case $target in */) target=\${target%"\${target##*[!/]}"}; [ -n "$target" ] || target=/ ;; esac
  case $target in */*) parent=\${target%/*}; [ -n "$parent" ] || parent=/ ;; *) parent=. ;; esac
  if [ -e "$target" ] || [ -h "$target" ]; then [ -d "$target" ] || die "$target exists and is not a folder"; fi
  check_size
  check_parent
  # Staging beside DIR (same file system: the move is a rename), or inside DIR if its parent is read-only.
  mkdir -p "$parent" || die "cannot create $parent"
  trap cleanup EXIT
  trap 'exit 130' INT TERM HUP
  stage="$parent/.bsched-staging-$BACKUP_NAME.$$"
  if ! (umask 077 && mkdir "$stage") 2>/dev/null; then
    stage="$target/.bsched-staging-$BACKUP_NAME.$$"
    [ -d "$target" ] && (umask 077 && mkdir "$stage") || { stage=; die "cannot create a staging folder beside $target"; }
  fi
  tree="$stage/tree"
  mkdir "$tree" || die "cannot create $tree"
  sum_ok=1
  if [ "$nocheck" = 0 ]; then [ "$(payload | sha256_of)" = "$PAYLOAD_SHA256" ] || sum_ok=0; fi
  { unpack || : >"$stage/unpack-failed"; } | (cd "$tree" && tar -xpf -) || : >"$stage/tar-failed"
  m="$tree/$MANIFEST_MEMBER"
  if [ -f "$m" ]; then check_members
  else report "the embedded manifest $MANIFEST_MEMBER is missing from the payload"; fi
  if [ "$damaged" = 0 ]; then
    [ -f "$stage/unpack-failed" ] || [ -f "$stage/tar-failed" ] && report "the payload does not decompress or is not a tar"
    [ "$sum_ok" = 1 ] || report "payload sha256 differs from the one recorded here (damage outside the files' contents)"
  fi
  [ "$damaged" = 0 ] || die "DAMAGED: $me: $damaged problem(s) found; nothing was written into $target (use another copy of this file, or another backup)"
  digest=
  [ "$nocheck" = 0 ] && digest=$(sha256_of <"$m")
  rm -f "$m"
  # From here DIR changes: a marker left from before would name a state DIR is no longer at.
  rm -f "$target/$MARKER" || die "cannot remove $target/$MARKER"
  if [ -d "$target" ]; then
    (cd "$target" && apply_deletions) || die "could not apply the deletions in $target"
    # Files stored as blocks: written with dd onto their previous version in DIR (blocks-script.ts).
    abs_target=$(cd "$target" && pwd) && abs_stage=$(cd "$stage" && pwd) &&
      (cd "$tree" && ${applyBlocksLine('"$abs_target"', '"$abs_stage/ref"')}) ||
      die "could not apply the blocks of $BACKUP_NAME in $target"
    if [ -n "$(ls -A "$tree")" ]; then
      # Merged by tar: folders already in DIR get the payload's modes and times, files are replaced.
      { (cd "$tree" && set -- && for f in ./* ./.[!.]* ./..?*; do
          if [ -e "$f" ] || [ -h "$f" ]; then set -- "$@" "$f"; fi
        done && tar -cf - "$@") || : >"$stage/pack-failed"; } | (cd "$target" && tar -xpf -) &&
        [ ! -f "$stage/pack-failed" ] || die "moving the checked files from $stage into $target failed"
    fi
  else
    mv "$tree" "$target" || die "moving $tree to $target failed"
  fi
  printf '%s\\n' "# bsched: this folder holds the state of this backup (an incremental's --target checks it)" \\
    "set=$BACKUP_SET" "backup=$BACKUP_NAME" "digest=$digest" >"$target/$MARKER.tmp" &&
    mv -f "$target/$MARKER.tmp" "$target/$MARKER" || die "could not write $target/$MARKER"
  say "extracted $BACKUP_NAME into $target (checked; $target/$MARKER names it)"
}
action=; target=; force=0; nocheck=0
while [ $# -gt 0 ]; do
  case $1 in
    --target) [ $# -ge 2 ] || die "usage: sh $me --target DIR [--force] [--no-check]"; action=target; target=$2; shift ;;
    --list|--check|--help|-h) action=$1 ;;
    --force) force=1 ;;
    --no-check) nocheck=1 ;;
    *) die "unknown option $1 (see: sh $me --help)" ;;
  esac
  shift
done
case "$action" in
  target) need; extract ;;
  --list) need; unpack | tar -tvf - ;;
  --check) need; check ;;
  *) usage ;;
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

/** A self-extracting file to read: how to open it, and what messages call it. */
export interface PayloadFile {
  /** Its path (or URL), as messages have always named it. */
  label: string;
  open(): Promise<ReadHandle>;
}

/** The self-extracting file of backup `name` on `dest` (on a one-file destination: that file). */
export function payloadOf(dest: Destination, name: string): PayloadFile {
  const file = selfExtractingName(name);
  return { label: dest.locationOf(name, file), open: () => dest.open(name, file) };
}

/**
 * Read and check the header of a self-extracting backup file: on a local destination a regular
 * file, never read through a link nor waited on as a FIFO (backup folders are untrusted input;
 * see `openRegular` in src/platform/fsutil.ts, which LocalDestination.open uses).
 */
export async function readSelfExtractingHeader(src: PayloadFile): Promise<ParsedHeader> {
  const fh = await src.open();
  try {
    const buf = Buffer.alloc(16384);
    const bytesRead = await fh.read(buf, 0, buf.length, 0);
    const header = parseHeader(buf.subarray(0, bytesRead).toString("latin1"));
    if (!header) {
      throw new BschedError(
        "MANIFEST_INVALID",
        `${src.label} is not a bsched self-extracting backup (its header is missing or damaged)`,
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
