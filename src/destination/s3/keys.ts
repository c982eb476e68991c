import { BschedError } from "../../core/errors.ts";

/**
 * Object keys of an S3 destination: `<prefix>/<backup>/manifest.json`, `<prefix>/<backup>/files/…`,
 * `<prefix>/<backup>/<name>.sh` and `<prefix>/.bsched-<set>.lock` — the names every destination
 * uses, so `aws s3 ls`, `rclone ls` or any S3 browser shows the same tree as a folder would.
 */

/** The configured prefix as the start of every key: "" or "site1/" (slashes trimmed). */
export function rootOf(prefix: string): string {
  const p = prefix.replace(/^\/+|\/+$/g, "");
  return p === "" ? "" : `${p}/`;
}

/**
 * `<root><backup>/<file>`; a path that would leave the backup (`..`, an empty or absolute part) is
 * refused: names given to a Destination are checked already, but a key is never built blindly.
 */
export function keyOf(root: string, backup: string, file?: string): string {
  const parts = [backup, ...(file === undefined ? [] : file.split("/"))];
  for (const p of parts) {
    if (p === "" || p === "." || p === ".." || p.includes("\\") || p.includes("\0")) {
      throw new BschedError("UNSAFE_PATH", `refusing the object key ${root}${parts.join("/")}`, {
        hint: "a backup's file names must stay inside the backup",
      });
    }
  }
  return `${root}${parts.join("/")}`;
}

/** The name a backup folder without a manifest and without a staging marker lists as (a remove cut short). */
export function incompleteName(backup: string): string {
  return `.${backup}.incomplete`;
}
