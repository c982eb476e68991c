import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { BIN, runCli } from "./helpers/cli.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";

async function serverWithFiles(setKeys: string[] = []): Promise<TestServer> {
  const s = await makeServer({ mode: "full", setKeys });
  await fs.writeFile(path.join(s.data, "cards.db"), "cards ".repeat(2000));
  await fs.writeFile(path.join(s.data, "events.db"), "events ".repeat(2000));
  return s;
}

test("human results go to stdout (`bsched verify data > report.txt` keeps the report); errors stay on stderr", async (t) => {
  const s = await serverWithFiles(["keep: {last: 5}"]);
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));

  const b = await s.cli(["backup", "data"]);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stdout, /full separate backup of set data: 2 files/);
  assert.match(b.stdout, /^ {2}in .*D_\d{4}_/m);
  assert.doesNotMatch(b.stderr, /backup of set data/);

  const r = await s.cli(["restore", "data", "--to", path.join(s.dir, "out")]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^restored D_\S+ \(chain: D_\S+\) into /);
  assert.match(r.stdout, /2 files/);
  assert.doesNotMatch(r.stderr, /restored/);

  const v = await s.cli(["verify", "data"]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /verified 1 backup\(s\), 2 files.*no damage found/);
  assert.doesNotMatch(v.stderr, /verified/);

  // Every other command's result is on stdout too.
  for (const args of [["list"], ["status"], ["history"], ["next"], ["prune", "data", "--dry-run"]]) {
    const o = await s.cli(args);
    assert.equal(o.code, 0, `${args.join(" ")}: ${o.stderr}`);
    assert.notEqual(o.stdout, "", `${args.join(" ")} prints its result on stdout`);
    const first = o.stdout.split("\n")[0] as string;
    assert.ok(!o.stderr.includes(first), `${args.join(" ")}: not on stderr: ${o.stderr}`);
  }

  // The damage report of a failing verify is the result too: on stdout, with its exit code.
  const listing = JSON.parse((await s.cli(["list", "--json"])).stdout) as { path: string }[];
  await fs.writeFile(path.join(listing[0]?.path as string, "files/cards.db"), "flipped");
  const d = await s.cli(["verify", "data"]);
  assert.equal(d.code, 1);
  assert.match(d.stdout, /damage: D_\S+: cards\.db: damaged/);
  assert.match(d.stdout, /1 problem\(s\)/);

  // An error is not a result: stderr only.
  const e = await s.cli(["verify", "nosuch"]);
  assert.equal(e.code, 2);
  assert.equal(e.stdout, "");
  assert.match(e.stderr, /bsched: error: unknown set "nosuch"/);

  // --json is unchanged: stdout is the JSON alone.
  const j = await s.cli(["backup", "data", "--json"]);
  assert.equal(j.code, 0, j.stderr);
  assert.equal(JSON.parse(j.stdout).set, "data");
  const jv = await s.cli(["verify", "data", "--json"]);
  assert.equal(JSON.parse(jv.stdout).ok, false);
});

test("with --json a usage error is JSON on stdout too, with exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["list", "--frob", "--json"], /unknown option '--frob'/],
    [["backup", "--json"], /missing required argument 'set'/],
    [["frob", "--json"], /unknown command 'frob'/],
    [["restore", "--json", "--to"], /option '--to <dir>' argument missing/],
    [["restore", "--to", "/nonexistent/out", "--json"], /restore needs a SET or --from PATH/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    const j = JSON.parse(r.stdout) as { error: { code: string; message: string; hint: string } };
    assert.equal(j.error.code, "USAGE", args.join(" "));
    assert.match(j.error.message, message);
    assert.match(j.error.hint, /--help|bsched/);
    assert.match(r.stderr, message, "the person is told on stderr as before");
  }
  // Without --json a usage error stays on stderr alone.
  const plain = await runCli(["list", "--frob"]);
  assert.equal(plain.code, 2);
  assert.equal(plain.stdout, "");
});

test("restore --help and verify --help say --from takes a backup folder or a .sh file", async () => {
  for (const cmd of ["restore", "verify"]) {
    const h = await runCli([cmd, "--help"]);
    assert.equal(h.code, 0, h.stderr);
    const from = h.stdout.slice(h.stdout.indexOf("--from"));
    assert.match(from, /backup folder/);
    assert.match(from, /\.sh/);
  }
});

test("verify's progress knows its total from the first file (not 100 % and ETA 0:00 for most of the run)", async (t) => {
  const s = await makeServer({ mode: "incremental" });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  for (let i = 0; i < 3; i++) await fs.writeFile(path.join(s.data, `a${i}.db`), `a${i}`.repeat(5000));
  await s.backup();
  await fs.writeFile(path.join(s.data, "b.db"), "b".repeat(5000));
  await s.backup();
  // Progress is drawn only on a terminal: run the CLI under script(1), which gives it one.
  const cmd = [process.execPath, BIN, "verify", "data", "--config", s.config]
    .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
    .join(" ");
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn("script", ["-qec", cmd, "/dev/null"], { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    p.stdout.on("data", (d) => {
      text += d;
    });
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}: ${text}`))));
  });
  assert.match(out, /no damage found/);
  const lines = [...out.matchAll(/verify: (\d+)\/(\d+) files .*?\((\d+)%\)/g)];
  assert.ok(lines.length > 0, `a progress line was drawn: ${JSON.stringify(out)}`);
  for (const [line, , total] of lines)
    assert.equal(total, "4", `every line counts all 4 stored files: ${line}`);
  assert.equal(lines[0]?.[3], "0", "the first line is at 0 %, before any file is hashed");
});

test("verify --from a damaged self-extracting file lying alone names the damage, not a missing manifest", async (t) => {
  const s = await serverWithFiles(["type: compressed"]);
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const b = await s.backup();
  const usb = path.join(s.dir, "usb");
  await fs.mkdir(usb);
  const file = path.join(usb, `${b.name}.sh`);
  const verifyFrom = async () => {
    const v = await runCli(["verify", "--from", file], { cwd: s.dir });
    assert.equal(v.code, 1, v.stderr);
    assert.doesNotMatch(v.stdout, /manifest missing/);
    return v.stdout;
  };
  const original = path.join(b.path, `${b.name}.sh`);

  await fs.copyFile(original, file);
  const size = (await fs.stat(file)).size;
  await fs.truncate(file, size - 100);
  assert.match(
    await verifyFrom(),
    /damage: \S+\.sh: payload damaged: \d+ bytes, its header says \d+ \(truncated/,
  );

  await fs.copyFile(original, file);
  const fh = await fs.open(file, "r+");
  await fh.write(Buffer.from("XXXX"), 0, 4, size - 60);
  await fh.close();
  assert.match(await verifyFrom(), /payload damaged: its sha256 differs/);

  await fs.writeFile(file, "#!/bin/sh\necho not a backup\n");
  assert.match(await verifyFrom(), /not a bsched self-extracting file/);
});

test("an old system Node: npm installs without EBADENGINE, and bsched itself says which Node it needs", async (t) => {
  // npm checks "engines" against the Node that runs npm (the system's), not the Node 24 that the
  // project brings as a dependency and runs bsched with: the requirement lives in bin/bsched.js.
  const pkg = JSON.parse(await fs.readFile(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(pkg.engines?.node, undefined, "no engines.node for npm to warn about");
  assert.ok(pkg.devDependencies?.node, "the project brings its own Node");
  const old = spawnSync("/usr/bin/node", ["--version"], { encoding: "utf8" });
  const m = /^v(\d+)\.(\d+)/.exec(old.stdout ?? "");
  if (!m || Number(m[1]) > 22 || (Number(m[1]) === 22 && Number(m[2]) >= 15)) {
    t.skip("no Node older than 22.15 at /usr/bin/node on this machine");
    return;
  }
  const r = spawnSync("/usr/bin/node", [BIN, "--version"], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /is too old; bsched needs Node\.js 22\.15 or later/);
  assert.match(r.stderr, /npx bsched/);
});
