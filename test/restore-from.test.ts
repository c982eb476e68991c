import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { runCli, tempDir } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";
import { diffTrees, snapshotTree, type TreeRecord } from "./helpers/tree.ts";

/** A chain of three backups (full + 2 incrementals) and a snapshot of the source at each. */
async function threeBackups() {
  const s = await makeServer();
  await fs.mkdir(path.join(s.data, "db/empty"), { recursive: true });
  await fs.writeFile(path.join(s.data, "db/cards.db"), "cards v1");
  await fs.writeFile(path.join(s.data, "keep"), "unchanged");
  await fs.symlink("db/cards.db", path.join(s.data, "link"));
  const snaps = [await snapshotTree(s.data)];
  const names = [(await s.backup()).name];
  await fs.writeFile(path.join(s.data, "db/cards.db"), "cards v2, longer");
  await fs.writeFile(path.join(s.data, "db/events.db"), "events");
  snaps.push(await snapshotTree(s.data));
  names.push((await s.backup()).name);
  await fs.rm(path.join(s.data, "db/events.db"));
  await fs.appendFile(path.join(s.data, "keep"), "+");
  snaps.push(await snapshotTree(s.data));
  names.push((await s.backup()).name);
  return { s, snaps, names };
}

test("restore --from a copied Backup folder, with no config and no catalog, restores newest and older points", async () => {
  const { s, snaps, names } = await threeBackups();
  const elsewhere = await tempDir("bsched-other-computer-");
  const copy = path.join(elsewhere, "CopiedBackup");
  execFileSync("cp", ["-a", s.backups, copy]);
  await fs.rm(s.dir, { recursive: true, force: true }); // the server is gone
  const cwd = path.join(elsewhere, "empty-cwd");
  await fs.mkdir(cwd);

  for (const [i, name] of names.entries()) {
    const out = path.join(elsewhere, `out-${i}`);
    const r = await runCli(["restore", "--from", path.join(copy, name), "--to", out, "--json"], { cwd });
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.backup, name);
    assert.deepEqual(result.chain, names.slice(0, i + 1));
    assert.deepEqual(
      diffTrees(snaps[i] as Map<string, TreeRecord>, await snapshotTree(out)),
      [],
      `point ${i}`,
    );
  }
  // A trailing slash and a relative path work too.
  const rel = await runCli(["restore", "--from", `../CopiedBackup/${names[2]}/`, "--to", "../out-rel"], {
    cwd,
  });
  assert.equal(rel.code, 0, rel.stderr);
  assert.deepEqual(
    diffTrees(snaps[2] as Map<string, TreeRecord>, await snapshotTree(path.join(elsewhere, "out-rel"))),
    [],
  );
  await fs.rm(elsewhere, { recursive: true, force: true });
});

test("restore --from with a missing parent fails with CHAIN_BROKEN naming the missing folder", async () => {
  const { s, names } = await threeBackups();
  const elsewhere = await tempDir("bsched-other-computer-");
  // Copy only the newest and the full: the middle link is missing.
  await fs.mkdir(path.join(elsewhere, "B"));
  for (const n of [names[0], names[2]] as string[]) {
    execFileSync("cp", ["-a", path.join(s.backups, n), path.join(elsewhere, "B", n)]);
  }
  const out = path.join(elsewhere, "out");
  const r = await runCli(
    ["restore", "--from", path.join(elsewhere, "B", names[2] as string), "--to", out, "--json"],
    {
      cwd: elsewhere,
    },
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(names[1] as string));
  assert.match(r.stderr, /missing/);
  assert.equal(JSON.parse(r.stdout).error.code, "CHAIN_BROKEN");
  assert.equal(await fs.stat(out).catch(() => undefined), undefined, "nothing restored");

  // The middle link there but its manifest damaged (the newest's state needs it: format 3 lists
  // only changes): CHAIN_BROKEN naming it, nothing restored.
  const middle = path.join(elsewhere, "B", names[1] as string);
  execFileSync("cp", ["-a", path.join(s.backups, names[1] as string), middle]);
  const text = await fs.readFile(path.join(middle, "manifest.json"), "utf8");
  await fs.writeFile(path.join(middle, "manifest.json"), text.replace('"deletions":[', '"deletions":["x",'));
  const d = await runCli(
    ["restore", "--from", path.join(elsewhere, "B", names[2] as string), "--to", out, "--json"],
    { cwd: elsewhere },
  );
  assert.equal(d.code, 1, d.stderr);
  assert.equal(JSON.parse(d.stdout).error.code, "CHAIN_BROKEN");
  assert.match(d.stderr, new RegExp(`${names[1]}.*(altered|digest differs)`));
  assert.equal(await fs.stat(out).catch(() => undefined), undefined, "nothing restored");

  // A folder that is not a backup at all is named as such.
  const nb = await runCli(["restore", "--from", elsewhere, "--to", out], { cwd: elsewhere });
  assert.equal(nb.code, 1);
  assert.match(nb.stderr, /not a complete backup/);
  await fs.rm(elsewhere, { recursive: true, force: true });
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("a non-empty target is refused unless --overwrite, which then restores exactly", async () => {
  const { s, snaps, names } = await threeBackups();
  const out = path.join(s.dir, "out");
  await fs.mkdir(out);
  await fs.writeFile(path.join(out, "keep"), "something else");
  await fs.mkdir(path.join(out, "db"));
  await fs.symlink("/tmp", path.join(out, "db/cards.db"));
  const from = path.join(s.backups, names[2] as string);
  const refused = await s.cli(["restore", "--from", from, "--to", out]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /not empty/);
  assert.match(refused.stderr, /--overwrite/);
  assert.equal(await fs.readFile(path.join(out, "keep"), "utf8"), "something else", "untouched");

  const r = await s.cli(["restore", "--from", from, "--to", out, "--overwrite"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(diffTrees(snaps[2] as Map<string, TreeRecord>, await snapshotTree(out)), []);

  // An empty existing folder is fine without --overwrite.
  const empty = path.join(s.dir, "empty-target");
  await fs.mkdir(empty);
  const e = await s.cli(["restore", "data", "--to", empty]);
  assert.equal(e.code, 0, e.stderr);
  await fs.rm(s.dir, { recursive: true, force: true });
});
