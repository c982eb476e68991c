import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { copyBackup } from "../src/copy/copy-backup.ts";
import { faulty } from "../src/destination/faulty.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { verifyBackups } from "../src/verify/verify.ts";
import { makeServer } from "./helpers/server.ts";

for (const type of ["separate", "compressed"] as const) {
  test(`copyBackup (${type}): a full and an incremental copied to another folder verify there, byte for byte`, async (t) => {
    const s = await makeServer({ setKeys: [`type: ${type}`] });
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(s.data, "a.db"), Buffer.alloc(300_000, 7));
    await fs.writeFile(path.join(s.data, "b.txt"), "b\n");
    const full = await s.backup();
    await fs.writeFile(path.join(s.data, "b.txt"), "b changed\n");
    const inc = await s.backup();
    const from = new LocalDestination(s.backups);
    const to = new LocalDestination(path.join(s.dir, "copy"), { name: "usb" });
    await to.ready();
    for (const name of [full.name, inc.name]) await copyBackup(from, to, name);
    assert.deepEqual((await to.names()).sort(), [full.name, inc.name]);
    const report = await verifyBackups(to, [full.name, inc.name], () => {});
    assert.deepEqual(report.problems, []);
    assert.equal(report.backups, 2);
    for (const name of [full.name, inc.name]) {
      assert.ok(
        (await fs.readFile(path.join(s.backups, name, "manifest.json"))).equals(
          await fs.readFile(path.join(s.dir, "copy", name, "manifest.json")),
        ),
        "the same manifest bytes",
      );
    }
  });
}

test("copyBackup: a stream that breaks mid-file leaves nothing on the destination", async (t) => {
  const s = await makeServer();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(s.data, "a.db"), Buffer.alloc(3_000_000, 7));
  const full = await s.backup();
  const from = faulty(new LocalDestination(s.backups), { crashStreamsAfterBytes: 1_000_000 });
  const to = new LocalDestination(path.join(s.dir, "copy"), { name: "usb" });
  await to.ready();
  await assert.rejects(copyBackup(from, to, full.name));
  assert.deepEqual(await to.names(), [], "no backup and no staging left");
});
