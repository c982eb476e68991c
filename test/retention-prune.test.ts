import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { makeServer } from "./helpers/server.ts";

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

async function server(keep: string, mode: "full" | "incremental" = "incremental") {
  const s = await makeServer({ prefix: "bsched-prune-", mode, setKeys: keep ? [keep.trim()] : [] });
  dirs.push(s.dir);
  const backup = async (mode?: string) => {
    // --no-prune: these tests build a history first and apply the policy with `prune` themselves.
    const r = await s.cli(["backup", "data", "--json", "--no-prune", ...(mode ? ["--mode", mode] : [])]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { name: string; parent: string | null };
  };
  return { ...s, backup };
}

const listed = async (folder: string) => (await fs.readdir(folder)).sort();

test("prune keeps the whole chain of a kept incremental, deletes the rest, and every kept backup still verifies", async () => {
  const s = await server("    keep: { last: 2 }\n");
  await fs.writeFile(path.join(s.data, "a"), "1");
  const f1 = await s.backup("full");
  await fs.writeFile(path.join(s.data, "a"), "2");
  const i1 = await s.backup();
  const f2 = await s.backup("full");
  await fs.writeFile(path.join(s.data, "b"), "3");
  const i2 = await s.backup();
  await fs.writeFile(path.join(s.data, "c"), "4");
  const i3 = await s.backup();
  assert.equal(i3.parent, i2.name);

  const dry = await s.cli(["prune", "data", "--dry-run", "--json"]);
  assert.equal(dry.code, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout);
  assert.deepEqual(plan.keep, [f2.name, i2.name, i3.name], "last 2 = i2, i3; f2 is needed by i2");
  assert.deepEqual(plan.remove, [i1.name, f1.name], "children before parents");
  assert.deepEqual(plan.removed, []);
  assert.equal(
    (await listed(s.backups)).filter((n) => n.startsWith("D_")).length,
    5,
    "a dry run deletes nothing",
  );

  const real = await s.cli(["prune", "data", "--json"]);
  assert.equal(real.code, 0, real.stderr);
  assert.deepEqual(JSON.parse(real.stdout).removed, [i1.name, f1.name]);
  const left = await listed(s.backups);
  assert.deepEqual(
    left.filter((n) => !n.startsWith(".")),
    [f2.name, i2.name, i3.name],
  );
  assert.ok(!left.some((n) => n.includes(".deleting-")), "nothing half-deleted left behind");
  for (const n of [f2.name, i2.name, i3.name]) {
    const v = await s.cli(["verify", "data", "--backup", n]);
    assert.equal(v.code, 0, v.stderr);
  }
  const out = path.join(s.dir, "restored");
  const r = await s.cli(["restore", "data", "--to", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await fs.readFile(path.join(out, "c"), "utf8"), "4");
});

test("a half-done deletion (renamed aside) is never listed as a backup and is cleaned by the next prune", async () => {
  const s = await server("    keep: { last: 1 }\n", "full");
  await fs.writeFile(path.join(s.data, "a"), "1");
  const b1 = await s.backup();
  const b2 = await s.backup();
  // What a crash between the rename and the removal leaves.
  await fs.rename(path.join(s.backups, b1.name), path.join(s.backups, `.${b1.name}.deleting-99999-abcd0123`));
  const list = await s.cli(["list", "--json"]);
  assert.deepEqual(
    (JSON.parse(list.stdout) as { name: string }[]).map((b) => b.name),
    [b2.name],
  );
  const p = await s.cli(["prune", "data"]);
  assert.equal(p.code, 0, p.stderr);
  assert.deepEqual(await listed(s.backups), [b2.name]);
});

test("a set without keep: prune refuses (exit 2); keep with all zeros: the config is refused", async () => {
  const s = await server("");
  const p = await s.cli(["prune", "data"]);
  assert.equal(p.code, 2);
  assert.match(p.stderr, /no keep policy/);
  const z = await server("    keep: { last: 0, daily: 0 }\n");
  const r = await z.cli(["prune", "data"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /sets\.data\.keep.*keeps something/);
});
