import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { runCli, tempDir } from "./helpers/cli.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

test("init, full backup, list, restore: the restored tree equals the source", async () => {
  const dir = await tempDir();
  const init = await runCli(["init", "--root", "srv"], { cwd: dir });
  assert.equal(init.code, 0, init.stderr);
  const data = path.join(dir, "srv/Data");
  await fs.mkdir(path.join(data, "sub/empty"), { recursive: true });
  await fs.writeFile(path.join(data, "cardholders.db"), "x".repeat(100_000));
  await fs.writeFile(path.join(data, "sub/é 漢字 name.txt"), "unicode");
  await fs.symlink("../cardholders.db", path.join(data, "sub/link"));
  await fs.chmod(path.join(data, "sub/é 漢字 name.txt"), 0o640);

  const b = await runCli(["backup", "data", "--json"], { cwd: dir });
  assert.equal(b.code, 0, b.stderr);
  const summary = JSON.parse(b.stdout);
  assert.match(summary.name, /^D_\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}$/);
  assert.equal(summary.mode, "full");
  assert.equal(summary.files, 2);

  const list = await runCli(["list", "--json"], { cwd: dir });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    JSON.parse(list.stdout).map((x: { name: string }) => x.name),
    [summary.name],
  );

  const out = path.join(dir, "out");
  const r = await runCli(["restore", "data", "--to", out], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(diffTrees(await snapshotTree(data), await snapshotTree(out)), []);
});
