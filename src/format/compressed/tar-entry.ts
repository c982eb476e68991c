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

export function blockPadding(size: number): Buffer {
  const rem = size % 512;
  return Buffer.alloc(rem === 0 ? 0 : 512 - rem);
}

/** Two zero blocks end a tar archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);
