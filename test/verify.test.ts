import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { runCli, tempDir } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";

async function chainOfTwo() {
  const s = await makeServer();
  await fs.mkdir(path.join(s.data, "db"));
  await fs.writeFile(path.join(s.data, "db/cards.db"), "cards ".repeat(1000));
  await fs.writeFile(path.join(s.data, "db/events.db"), "events ".repeat(1000));
  await fs.writeFile(path.join(s.data, "odd name ✓.txt"), "odd");
  const b1 = await s.backup();
  await fs.writeFile(path.join(s.data, "db/new.db"), "new");
  const b2 = await s.backup();
  return { s, b1, b2 };
}

interface VerifyJson {
  ok: boolean;
  backups: number;
  files: number;
  problems: { backup: string; path?: string; problem: string }[];
}

test("verify passes on a clean set (exit 0), by set, by --backup and by --from", async () => {
  const { s, b2 } = await chainOfTwo();
  const all = await s.cli(["verify", "data", "--json"]);
  assert.equal(all.code, 0, all.stderr);
  const j = JSON.parse(all.stdout) as VerifyJson;
  assert.equal(j.ok, true);
  assert.equal(j.backups, 2);
  assert.equal(j.files, 4, "each stored file is read once: 3 in the full, 1 in the incremental");
  assert.deepEqual(j.problems, []);
  const one = await s.cli(["verify", "data", "--backup", b2.name]);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /no damage found/);
  const from = await runCli(["verify", "--from", path.join(s.backups, b2.name)], { cwd: s.dir });
  assert.equal(from.code, 0, from.stderr);
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("verify names a flipped byte and a deleted file, exits 1, and --json lists them", async () => {
  const { s, b1, b2 } = await chainOfTwo();
  const cards = path.join(s.backups, b1.name, "files/db/cards.db");
  const buf = await fs.readFile(cards);
  buf[500] = (buf[500] as number) ^ 0x01;
  await fs.writeFile(cards, buf);
  await fs.rm(path.join(s.backups, b1.name, "files/odd name ✓.txt"));

  const r = await s.cli(["verify", "data"]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /db\/cards\.db/);
  assert.match(r.stdout, /odd name ✓\.txt/);
  assert.match(r.stdout, /damaged/);
  assert.match(r.stdout, /missing/);
  assert.doesNotMatch(r.stdout, /events\.db/, "intact files are not named");

  const j = await s.cli(["verify", "data", "--json"]);
  assert.equal(j.code, 1);
  const res = JSON.parse(j.stdout) as VerifyJson;
  assert.equal(res.ok, false);
  assert.deepEqual(res.problems.map((p) => [p.backup, p.path]).sort(), [
    [b1.name, "db/cards.db"],
    [b1.name, "odd name ✓.txt"],
  ]);

  // --from the newest verifies its whole chain, so the damage in the full is found too.
  const elsewhere = await tempDir();
  execFileSync("cp", ["-a", s.backups, path.join(elsewhere, "B")]);
  const f = await runCli(["verify", "--from", path.join(elsewhere, "B", b2.name), "--json"], {
    cwd: elsewhere,
  });
  assert.equal(f.code, 1);
  assert.equal((JSON.parse(f.stdout) as VerifyJson).problems.length, 2);

  // A restore of the damaged chain also refuses to call it good.
  const out = path.join(s.dir, "out");
  const rr = await s.cli(["restore", "data", "--to", out]);
  assert.equal(rr.code, 1);
  assert.match(rr.stderr, /cards\.db/);
  await fs.rm(elsewhere, { recursive: true, force: true });
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("verify reports a broken chain link (altered parent manifest) and a missing parent", async () => {
  const { s, b1, b2 } = await chainOfTwo();
  const m = path.join(s.backups, b1.name, "manifest.json");
  const text = await fs.readFile(m, "utf8");
  await fs.writeFile(m, text.replace('"host":', '"host": '));
  const r = await s.cli(["verify", "data", "--json"]);
  assert.equal(r.code, 1);
  const res = JSON.parse(r.stdout) as VerifyJson;
  const p = res.problems.find((x) => x.backup === b2.name);
  assert.ok(p, JSON.stringify(res.problems));
  assert.match(p.problem, /digest/);

  await fs.rm(path.join(s.backups, b1.name), { recursive: true });
  const f = await runCli(["verify", "--from", path.join(s.backups, b2.name)], { cwd: s.dir });
  assert.equal(f.code, 1);
  assert.match(f.stdout, new RegExp(b1.name));
  await fs.rm(s.dir, { recursive: true, force: true });
});
