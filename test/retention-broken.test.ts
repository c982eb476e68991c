import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { makeServer } from "./helpers/server.ts";

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

type Listed = { name: string; state: string; reason: string | null; mode: string | null };

test("issue 9 item 2: a damaged manifest mid-chain: prune keeps the restorable backups, flags the broken ones, and `prune --broken` removes only those", async () => {
  const s = await makeServer({ prefix: "bsched-broken-", setKeys: ["keep: { last: 2 }"] });
  dirs.push(s.dir);
  const made: string[] = [];
  for (let i = 1; i <= 5; i++) {
    await fs.writeFile(path.join(s.data, `f${i}`), `v${i}`);
    made.push((await s.backup()).name);
  }
  const [b1, b2, b3, b4, b5] = made as [string, string, string, string, string];
  // The 3rd backup's manifest cut to 100 bytes (a bad sector, a half copy).
  await fs.truncate(path.join(s.backups, b3, "manifest.json"), 100);
  const next = await s.cli(["backup", "data", "--json"]);
  assert.equal(next.code, 3, next.stderr);
  assert.match(next.stderr, /CHAIN_BROKEN/);
  const b6 = JSON.parse(next.stdout) as { name: string; mode: string };
  assert.equal(b6.mode, "full");

  // Nothing was deleted: the last 2 restorable are b6 and b2 (b1 needed by b2); the broken are kept.
  const names = (await fs.readdir(s.backups)).filter((n) => n.startsWith("D_")).sort();
  assert.deepEqual(names, [...made, b6.name].sort());
  assert.match(next.stderr, new RegExp(`${b3} cannot be restored .*prune data --broken`));

  const list = await s.cli(["list", "data", "--json"]);
  assert.equal(list.code, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as Listed[];
  const state = Object.fromEntries(rows.map((r) => [r.name, [r.state, r.reason]]));
  assert.deepEqual(state[b1], ["ok", null]);
  assert.deepEqual(state[b2], ["ok", null]);
  assert.deepEqual(state[b6.name], ["ok", null]);
  assert.equal(state[b3]?.[0], "broken");
  assert.match(String(state[b3]?.[1]), /manifest unreadable/);
  assert.deepEqual(state[b4], ["broken", `depends on broken ${b3} (${state[b3]?.[1]})`]);
  assert.deepEqual(state[b5], ["broken", `depends on broken ${b4}`]);
  const human = await s.cli(["list", "data"]);
  assert.match(human.stdout, /STATE/);
  assert.match(human.stdout, new RegExp(`${b5} .*broken: depends on broken ${b4}`));
  assert.match(human.stderr, /3 backup\(s\) cannot be restored/);

  const status = await s.cli(["status", "--json"]);
  assert.equal(JSON.parse(status.stdout).sets[0].backups.broken, 3);
  const statusHuman = await s.cli(["status"]);
  assert.match(statusHuman.stdout, /warning: +3 backup\(s\) cannot be restored.*prune data --broken/);

  const verify = await s.cli(["verify", "data", "--json"]);
  assert.equal(verify.code, 1);
  const problems = JSON.parse(verify.stdout).problems as { backup: string; problem: string }[];
  assert.ok(
    problems.some((p) => p.backup === b4 && p.problem.startsWith(`broken chain: depends on broken ${b3}`)),
    verify.stdout,
  );

  // The policy says why the broken ones stay; a plain prune still deletes nothing.
  const plain = await s.cli(["prune", "data", "--json"]);
  assert.equal(plain.code, 0, plain.stderr);
  const plan = JSON.parse(plain.stdout);
  assert.deepEqual(plan.keep, [b1, b2, b6.name]);
  assert.deepEqual(plan.removed, []);
  assert.deepEqual(
    plan.broken.map((b: { name: string }) => b.name),
    [b5, b4, b3],
  );

  const dry = await s.cli(["prune", "data", "--broken", "--dry-run"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`would delete ${b4}  \\(cannot be restored: depends on broken ${b3}`));
  assert.equal((await fs.readdir(s.backups)).filter((n) => n.startsWith("D_")).length, 6);
  const real = await s.cli(["prune", "data", "--broken", "--json"]);
  assert.equal(real.code, 0, real.stderr);
  assert.deepEqual(JSON.parse(real.stdout).removed, [b5, b4, b3]);
  assert.deepEqual((await fs.readdir(s.backups)).filter((n) => n.startsWith("D_")).sort(), [b1, b2, b6.name]);
  for (const n of [b2, b6.name]) {
    const out = path.join(s.dir, `out-${n}`);
    const r = await s.cli(["restore", "data", "--backup", n, "--to", out]);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(await fs.readFile(path.join(s.dir, `out-${b2}`, "f2"), "utf8"), "v2");
  const clean = await s.cli(["status"]);
  assert.doesNotMatch(clean.stdout, /cannot be restored/);
});

test("a parent altered after the fact: its child is flagged, the parent itself stays restorable", async () => {
  const s = await makeServer({ prefix: "bsched-broken-", setKeys: ["keep: { last: 1 }"] });
  dirs.push(s.dir);
  await fs.writeFile(path.join(s.data, "a"), "1");
  const f = await s.backup(["--no-prune"]);
  await fs.writeFile(path.join(s.data, "a"), "2");
  const i = await s.backup(["--no-prune"]);
  // Re-written with a different host: still a valid manifest, but not the one i was made from.
  const file = path.join(s.backups, f.name, "manifest.json");
  const text = await fs.readFile(file, "utf8");
  await fs.writeFile(file, text.replace(/"host":"[^"]*"/, '"host":"elsewhere"'));
  const list = JSON.parse((await s.cli(["list", "data", "--json"])).stdout) as Listed[];
  assert.deepEqual(
    list.map((r) => [r.name, r.state, r.reason]),
    [
      [f.name, "ok", null],
      [i.name, "broken", `parent ${f.name} altered (manifest digest differs)`],
    ],
  );
  // keep last 1 counts only restorable backups: f is kept, i is kept as broken; nothing deleted.
  const p = JSON.parse((await s.cli(["prune", "data", "--json"])).stdout);
  assert.deepEqual(p.keep, [f.name]);
  assert.deepEqual(p.removed, []);
  // The next backup is not made on a chain that cannot be restored: a full, with the reason.
  const next = await s.cli(["backup", "data", "--json", "--no-prune"]);
  assert.equal(next.code, 3, next.stderr);
  assert.equal(JSON.parse(next.stdout).mode, "full");
  assert.match(
    next.stderr,
    new RegExp(`${i.name} cannot be restored: parent ${f.name} altered.*\\[CHAIN_BROKEN\\]`),
  );
  await fs.rm(path.join(s.backups, JSON.parse(next.stdout).name), { recursive: true });
  // Restore of "the newest" refuses (never an older one silently) and names the newest restorable.
  const r = await s.cli(["restore", "data", "--to", path.join(s.dir, "out")]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`hint: the newest restorable backup of set "data" is ${f.name}: add \`--backup ${f.name}\``),
  );
  const v = await s.cli(["verify", "data", "--json"]);
  assert.ok(
    (JSON.parse(v.stdout).problems as { backup: string; problem: string }[]).some(
      (x) => x.backup === i.name && x.problem.startsWith("broken chain:"),
    ),
  );
});

test("a set renamed while keeping its letter: its old backups are flagged, never deleted (not even by prune --broken), and restore with --from", async () => {
  const s = await makeServer({ prefix: "bsched-renamed-", mode: "full", setKeys: ["keep: { last: 1 }"] });
  dirs.push(s.dir);
  await fs.writeFile(path.join(s.data, "cardholders.db"), "v1");
  const old = await s.backup();
  // The administrator renames the set `data` to `db` (same letter, same source).
  const yaml = await fs.readFile(s.config, "utf8");
  await fs.writeFile(s.config, yaml.replace(/^ {2}data:$/m, "  db:"));
  const list = await s.cli(["list", "db", "--json"]);
  assert.equal(list.code, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as Listed[];
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.state, "broken");
  assert.match(String(rows[0]?.reason), /a backup of set data, not of this set/);
  // A new backup of `db`, then the keep policy and an explicit prune --broken: the old one stays.
  const fresh = await s.cli(["backup", "db", "--json"]);
  assert.equal(fresh.code, 0, fresh.stderr);
  const prune = await s.cli(["prune", "db", "--broken"]);
  assert.equal(prune.code, 0, prune.stderr);
  assert.match(prune.stdout, new RegExp(`kept +${old.name} .*a backup of set data`));
  await fs.access(path.join(s.backups, old.name, "manifest.json"));
  const to = path.join(s.dir, "restored");
  const restored = await s.cli(["restore", "--from", path.join(s.backups, old.name), "--to", to]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.equal(await fs.readFile(path.join(to, "cardholders.db"), "utf8"), "v1");
});
