/**
 * Applying a backup's stored blocks with POSIX tools only (docs/design.md "Block incrementals"):
 * the same program in a separate backup's `apply-blocks.sh` and in a self-extracting file. A
 * file stored as blocks is a folder `PATH.bsched-blocks/` beside where the file would be:
 *
 *   K            block number K (a decimal file name): bytes at offset K × block-size
 *   block-size   the block size in bytes (text)
 *   size         the file's new length in bytes (text); its mtime is the file's
 *   mode         the file's permission bits in octal (text)
 *
 * Each block is written with `dd … seek=K conv=notrunc` onto the previous version of the file
 * (restored from the older backups first), then the file is cut to its size (`dd` without
 * notrunc truncates at its seek offset), given its mode and its mtime (`touch -r size`).
 */

/** Names in a blocks folder besides the blocks. */
export const BLOCK_SIZE_FILE = "block-size";
export const MODE_FILE = "mode";
export const APPLY_SCRIPT = "apply-blocks.sh";

/**
 * The `sh -c` program, run in the folder holding the backup's tree (files/ or the extracted
 * payload): `sh -c PROG sh TARGET REF DIR…` with each DIR a `./PATH.bsched-blocks`. Applies each
 * onto TARGET/PATH, removes the copy of DIR a plain copy of the tree put into TARGET, and gives
 * TARGET's folder the backup's mtime again. REF, when not empty, is a scratch file: DIR is then
 * also removed from the tree itself, its folder keeping its mtime (the self-extracting file
 * moves its tree into TARGET afterwards).
 */
export const APPLY_PROGRAM = `t=$1; ref=$2; shift 2
for b do
  f=$t/\${b%.bsched-blocks}
  bs=$(cat "$b/block-size") && size=$(cat "$b/size") && mode=$(cat "$b/mode") || exit 1
  if [ ! -f "$f" ]; then
    printf 'bsched: %s: its previous version is missing: apply the backups oldest first\\n' "$f" >&2; exit 1
  fi
  for k in "$b"/*; do
    n=\${k##*/}
    case $n in *[!0-9]*) continue ;; esac
    dd if="$k" of="$f" bs="$bs" seek="$n" conv=notrunc 2>/dev/null || exit 1
  done
  dd if=/dev/null of="$f" bs=1 seek="$size" 2>/dev/null || exit 1
  chmod "$mode" "$f" && touch -r "$b/size" "$f" || exit 1
  p=\${b%/*}
  rm -rf -- "$t/$b"
  touch -r "$p" "$t/$p" || exit 1
  if [ -n "$ref" ]; then touch -r "$p" "$ref" && rm -rf -- "$b" && touch -r "$ref" "$p" || exit 1; fi
done`;

/** The shell line that applies every blocks folder under the current folder onto "$target". */
export function applyBlocksLine(target: string, ref: string): string {
  return `find . -type d -name '*.bsched-blocks' -prune -exec sh -c '${APPLY_PROGRAM.replaceAll("'", `'\\''`)}' sh ${target} ${ref} {} +`;
}

/** A separate backup's `apply-blocks.sh`: after its files/ were copied into TARGET, `sh apply-blocks.sh TARGET`. */
export function applyScript(name: string): string {
  return `#!/bin/sh
# bsched ${name}: applies the blocks this backup stores onto the previous version of each file.
# The manual procedure for a separate incremental, oldest backup first (docs/design.md):
#   remove the paths of manifest.json's "deletions" from TARGET, cp -a files/. TARGET/, then
#   sh apply-blocks.sh TARGET
set -u
[ $# -eq 1 ] || { echo "usage: sh $0 TARGET" >&2; exit 2; }
here=.; case $0 in */*) here=\${0%/*} ;; esac
target=$(cd "$1" && pwd) || exit 1
cd "$here/files" || exit 1
${applyBlocksLine('"$target"', '""')}
`;
}
