import { Header, Pax } from "tar";

export interface TarMember {
  path: string;
  type: "File" | "Directory" | "SymbolicLink";
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkpath?: string;
}

/** The header block(s) of one member, with a PAX extended header when ustar cannot hold it. */
export function memberHeader(m: TarMember): Buffer {
  const path = m.type === "Directory" ? `${m.path}/` : m.path;
  const fast = plainUstar(m, path);
  if (fast) return fast;
  const h = new Header({
    path,
    type: m.type,
    mode: m.mode,
    uid: m.uid,
    gid: m.gid,
    size: m.size,
    mtime: m.mtime,
    linkpath: m.linkpath,
    uname: "",
    gname: "",
  });
  if (h.encode()) {
    const pax = new Pax({
      path,
      linkpath: m.linkpath,
      size: m.size,
      mtime: m.mtime,
      uid: m.uid,
      gid: m.gid,
    }).encode();
    return Buffer.concat([pax, h.block as Buffer]);
  }
  return h.block as Buffer;
}

const TYPE_FLAG = { File: 0x30, Directory: 0x35, SymbolicLink: 0x32 } as const;
const MAX8 = 0o7777777;
const MAX12 = 0o77777777777;
/** Printable ASCII only: a byte per character, as ustar's fields are counted (anything else: node-tar). */
const ASCII = /^[ -~]*$/;

/**
 * The ustar block node-tar's Header would encode, byte for byte, for the common member: ASCII
 * names short enough for the name field alone, numbers that fit its octal fields. node-tar
 * spent a tenth of a backup of 31,000 small files building its Header objects; everything
 * else (long or non-ASCII names, a prefix split, large or negative numbers) still goes through
 * it. test/tar-entry.test.ts holds the two to the same bytes.
 */
function plainUstar(m: TarMember, path: string): Buffer | undefined {
  const seconds = m.mtime.getTime() / 1000;
  const link = m.linkpath;
  if (
    path.length >= 100 ||
    (link !== undefined && link.length > 100) ||
    !ASCII.test(path) ||
    (link !== undefined && !ASCII.test(link)) ||
    !(m.mode >= 0 && m.mode <= MAX8) ||
    !(m.uid >= 0 && m.uid <= MAX8) ||
    !(m.gid >= 0 && m.gid <= MAX8) ||
    !(m.size >= 0 && m.size <= MAX12) ||
    !(seconds >= 0 && seconds <= MAX12)
  ) {
    return undefined;
  }
  const b = Buffer.alloc(512);
  b.write(path, 0, "latin1");
  octal(b, 100, 8, m.mode);
  octal(b, 108, 8, m.uid);
  octal(b, 116, 8, m.gid);
  octal(b, 124, 12, m.size);
  octal(b, 136, 12, seconds);
  b[156] = TYPE_FLAG[m.type];
  if (link !== undefined) b.write(link, 157, "latin1");
  b.write("ustar\u000000", 257, "latin1");
  octal(b, 329, 8, 0);
  octal(b, 337, 8, 0);
  let sum = 8 * 0x20; // the checksum field counts as spaces
  for (let i = 0; i < 148; i++) sum += b[i] as number;
  for (let i = 156; i < 512; i++) sum += b[i] as number;
  octal(b, 148, 8, sum);
  return b;
}

/** node-tar's octal field: the whole part, zero-padded, then ` \0` (or only `\0` when it fills the field). */
function octal(b: Buffer, at: number, size: number, n: number): void {
  const s = Math.floor(n).toString(8);
  b.write(s.length === size - 1 ? s : `${s.padStart(size - 2, "0")} `, at, "latin1");
}

const ZEROS = Buffer.alloc(1024);

/** Zeros up to the next 512-byte block (a view of a shared buffer: the caller copies it). */
export function blockPadding(size: number): Buffer {
  const rem = size % 512;
  return ZEROS.subarray(0, rem === 0 ? 0 : 512 - rem);
}

/** Two zero blocks end a tar archive. */
export const END_OF_ARCHIVE = ZEROS;
