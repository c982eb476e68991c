import { BschedError } from "../../core/errors.ts";

/**
 * Names on an SMB share. SMB refuses `"*:<>?\|` and control characters in a name, which a
 * source file on Linux may hold; and smbclient's command language has no escape for `"` inside a
 * quoted argument, nor for a line break. So each name is stored with those characters mapped to
 * look-alikes (the fullwidth forms, U+2400 + c for control characters, as rclone does): a name
 * without them is stored as it is, browsable by hand. The mapping is one-to-one: a name that
 * already holds a look-alike (or the escape ‛ itself) has it prefixed with ‛ (U+201B).
 */

const ESCAPE = "\u201b";
/** ASCII characters SMB refuses in a name, and their fullwidth look-alikes (U+FF00 + c - 0x20). */
const FORBIDDEN = '"*:<>?\\|';
const fullwidth = (c: string) => String.fromCharCode((c.codePointAt(0) as number) + 0xfee0);
const LOOKALIKES = new Set([...FORBIDDEN].map(fullwidth));

function isControl(c: string): boolean {
  const n = c.codePointAt(0) as number;
  return n < 0x20 || n === 0x7f;
}
const controlPicture = (c: string) => String.fromCharCode(0x2400 + ((c.codePointAt(0) as number) & 0x7f));
const PICTURES = new Set(
  Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(0x2400 + i)).concat("\u2421"),
);

/** One path component as stored on the share. */
export function encodeName(name: string): string {
  let out = "";
  for (const c of name) {
    if (FORBIDDEN.includes(c)) out += fullwidth(c);
    else if (isControl(c)) out += c === "\x7f" ? "\u2421" : controlPicture(c);
    else if (c === ESCAPE || LOOKALIKES.has(c) || PICTURES.has(c)) out += ESCAPE + c;
    else out += c;
  }
  return out;
}

/** The name a stored component stands for (encodeName reversed). */
export function decodeName(stored: string): string {
  let out = "";
  let escaped = false;
  for (const c of stored) {
    if (escaped) {
      out += c;
      escaped = false;
    } else if (c === ESCAPE) escaped = true;
    else if (LOOKALIKES.has(c)) out += String.fromCharCode((c.codePointAt(0) as number) - 0xfee0);
    else if (c === "\u2421") out += "\x7f";
    else if (PICTURES.has(c)) out += String.fromCharCode((c.codePointAt(0) as number) - 0x2400);
    else out += c;
  }
  return out;
}

/**
 * The share-relative path (`\site1\D_…\files\a\b`) of `parts` joined under `base`, each part a
 * relative path with `/` separators. Refuses `..`, `.` and empty components: nothing leaves the
 * destination's folder.
 */
export function remotePath(base: string, ...parts: string[]): string {
  const comps: string[] = [];
  for (const p of [base, ...parts]) {
    for (const c of p.split("/")) {
      if (c === "") continue;
      if (c === "." || c === "..") {
        throw new BschedError("UNSAFE_PATH", `refusing the path ${JSON.stringify(p)} on an SMB share`, {
          hint: "a backup's names never hold `.` or `..` components: the manifest or the caller is wrong",
        });
      }
      comps.push(encodeName(c));
    }
  }
  return `\\${comps.join("\\")}`;
}

/** A path as one argument of an smbclient command: quoted (encodeName left no `"` nor line break in it). */
export function quoted(remote: string): string {
  if (/["\n\r]/.test(remote)) throw new Error(`unquotable SMB path ${JSON.stringify(remote)}`);
  return `"${remote}"`;
}
