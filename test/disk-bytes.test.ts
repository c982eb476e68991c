import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, test } from "node:test";
import { makeServer, type TestServer } from "./helpers/server.ts";

// Issue 9 item 9: sizes are reported as bytes on disk (a 97 KB `.sh` showed as 2.15 GB), with
// the logical size beside them.

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await fs.rm(s.dir, { recursive: true, force: true });
});

const MB20 = 20 * 1024 * 1024;

async function sizeOf(file: string): Promise<number> {
  return (await fs.stat(file)).size;
}

test("a compressed backup of a compressible 20 MB file: list, status, backup --json and the catalog give its size on disk", async () => {
  const s = await makeServer({ prefix: "bsched-disk-", mode: "full", setKeys: ["type: compressed"] });
  servers.push(s);
  await fs.writeFile(path.join(s.data, "big.log"), Buffer.alloc(MB20, "all quiet at the door\n"));

  const b = (await s.backup()) as Awaited<ReturnType<TestServer["backup"]>> & {
    bytes: number;
    storedBytes: number;
    diskBytes: number;
  };
  const onDisk =
    (await sizeOf(path.join(b.path, `${b.name}.sh`))) + (await sizeOf(path.join(b.path, "manifest.json")));
  assert.equal(b.bytes, MB20, "bytes: the logical size of the state");
  assert.equal(b.storedBytes, MB20, "storedBytes keeps its meaning: logical bytes this backup stores");
  assert.equal(b.diskBytes, onDisk, "diskBytes: the .sh and the manifest");
  assert.ok(b.diskBytes < MB20 / 20, `far below 20 MB on disk: ${b.diskBytes}`);

  const list = await s.cli(["list", "--json"]);
  assert.equal(list.code, 0, list.stderr);
  const [row] = JSON.parse(list.stdout);
  assert.equal(row.diskBytes, onDisk);
  assert.equal(row.bytes, MB20);

  const human = await s.cli(["list"]);
  assert.equal(human.code, 0, human.stderr);
  const [head, line] = human.stdout.split("\n");
  assert.match(head ?? "", /SIZE\s+ON DISK/);
  assert.match(line ?? "", /21\.0 MB\s+\d+(\.\d+)? KB\s/, "logical size, then the size on disk");

  const st = await s.cli(["status", "--json"]);
  assert.equal(st.code, 0, st.stderr);
  const set = JSON.parse(st.stdout).sets[0];
  assert.equal(set.backups.diskBytes, onDisk);
  const sh = await s.cli(["status"]);
  assert.match(sh.stdout, /backups: {3}1, \d+(\.\d+)? KB on disk/);

  const db = new DatabaseSync(path.join(s.root, ".bsched", "catalog.db"), { readOnly: true });
  try {
    const rec = db.prepare("SELECT bytes, stored_bytes, disk_bytes FROM backups").get() as Record<
      string,
      number
    >;
    assert.deepEqual({ ...rec }, { bytes: MB20, stored_bytes: MB20, disk_bytes: onDisk });
  } finally {
    db.close();
  }
});

test("a separate incremental's size on disk is the files it stores plus its manifest", async () => {
  const s = await makeServer({ prefix: "bsched-disk-" });
  servers.push(s);
  await fs.writeFile(path.join(s.data, "a.bin"), Buffer.alloc(300_000, 1));
  await fs.writeFile(path.join(s.data, "b.bin"), Buffer.alloc(5_000, 2));
  await s.backup();
  await fs.writeFile(path.join(s.data, "b.bin"), Buffer.alloc(7_000, 3));
  const inc = (await s.backup()) as Awaited<ReturnType<TestServer["backup"]>> & { diskBytes: number };
  assert.equal(inc.mode, "incremental");
  const manifest = await sizeOf(path.join(inc.path, "manifest.json"));
  assert.equal(inc.diskBytes, 7_000 + manifest);
  const list = JSON.parse((await s.cli(["list", "--json"])).stdout);
  assert.deepEqual(
    list.map((b: { diskBytes: number }) => b.diskBytes),
    [list[0].diskBytes, 7_000 + manifest],
  );
  assert.ok(list[0].diskBytes > 305_000);
});

test("prune reports the bytes on disk it freed", async () => {
  const s = await makeServer({
    prefix: "bsched-disk-",
    mode: "full",
    setKeys: ["type: compressed", "keep: { last: 1 }"],
  });
  servers.push(s);
  await fs.writeFile(path.join(s.data, "big.log"), Buffer.alloc(4 * 1024 * 1024, "door 12 opened\n"));
  const first = (await s.backup(["--no-prune"])) as Awaited<ReturnType<TestServer["backup"]>> & {
    diskBytes: number;
  };
  await s.backup(["--no-prune"]);
  const r = await s.cli(["prune", "data", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  assert.deepEqual(p.removed, [first.name]);
  assert.equal(p.freedBytes, first.diskBytes);
  assert.ok(p.freedBytes < 1024 * 1024);
});
