import assert from "node:assert/strict";
import { test } from "node:test";
import { Header, Pax } from "tar";
import { blockPadding, memberHeader, type TarMember } from "../src/format/compressed/tar-entry.ts";

/** What node-tar encodes for a member: the reference the fast ustar path must match byte for byte. */
function reference(m: TarMember): Buffer {
  const path = m.type === "Directory" ? `${m.path}/` : m.path;
  const h = new Header({ ...m, path, uname: "", gname: "" });
  if (!h.encode()) return h.block as Buffer;
  const pax = new Pax({ path, linkpath: m.linkpath, size: m.size, mtime: m.mtime, uid: m.uid, gid: m.gid });
  return Buffer.concat([pax.encode(), h.block as Buffer]);
}

test("tar member headers are node-tar's, byte for byte (the fast ustar path and its fallbacks)", () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const names = [
    "a",
    "dir/file.txt",
    "x".repeat(98),
    "y".repeat(99),
    "z".repeat(100),
    `${"d/".repeat(60)}f`,
    "café",
    "sp ace/quo'te",
  ];
  const numbers = [0, 1, 0o644, 0o7777777, 0o10000000, 2 ** 31, 0o77777777777, 0o100000000000];
  const times = [
    0,
    1700000000123,
    1700000000999,
    -2000,
    8 ** 11 * 1000 - 1000,
    8 ** 11 * 1000 - 1500,
    8 ** 11 * 1000,
    4102444800000,
  ];
  const types = ["File", "Directory", "SymbolicLink"] as const;
  let fast = 0;
  for (let i = 0; i < 3000; i++) {
    const type = types[rnd(3)] as TarMember["type"];
    const m: TarMember = {
      path: names[rnd(names.length)] as string,
      type,
      mode: [0o644, 0o755, 0o4755, numbers[rnd(numbers.length)] as number][rnd(4)] as number,
      uid: numbers[rnd(numbers.length)] as number,
      gid: numbers[rnd(numbers.length)] as number,
      size: type === "File" ? (numbers[rnd(numbers.length)] as number) : 0,
      mtime: new Date(times[rnd(times.length)] as number),
      ...(type === "SymbolicLink" ? { linkpath: names[rnd(names.length)] as string } : {}),
    };
    const got = memberHeader(m);
    assert.deepEqual(got, reference(m), JSON.stringify(m));
    if (got.length === 512 && m.path.length < 99) fast++;
  }
  assert.ok(fast > 100, "the common members are among those checked");
});

test("block padding: zeros up to the next 512-byte boundary", () => {
  for (const [size, pad] of [
    [0, 0],
    [1, 511],
    [511, 1],
    [512, 0],
    [513, 511],
  ]) {
    const b = blockPadding(size as number);
    assert.equal(b.length, pad);
    assert.ok(b.every((x) => x === 0));
  }
});
