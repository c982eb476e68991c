import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import { test } from "node:test";
import { checkPassword } from "../src/api/auth/password.ts";
import { readUsers } from "../src/api/auth/users.ts";
import { loadConfig } from "../src/config/load.ts";
import { BIN, collect } from "./helpers/cli.ts";
import { assertNoSecrets, sampleProcessList } from "./helpers/leaks.ts";
import { makeServer } from "./helpers/server.ts";

const PASSWORD = `user-${Math.random().toString(36).slice(2)}-pw`;
const OTHER = `other-${Math.random().toString(36).slice(2)}-pw`;

test("bsched user add|list|passwd|remove: passwords from stdin only, never shown; names checked; --json", async () => {
  const s = await makeServer({ prefix: "bsched-user-" });
  const state = loadConfig(s.config).state;
  const ps = sampleProcessList(100);
  const outputs: Record<string, string> = {};
  const run = async (label: string, args: string[], input?: string) => {
    const r = await s.cli(args, undefined, input);
    outputs[label] = r.stdout + r.stderr;
    return r;
  };

  const add = await run("add", ["user", "add", "admin", "--stdin", "--json"], `${PASSWORD}\n`);
  assert.equal(add.code, 0, add.stderr);
  assert.equal((JSON.parse(add.stdout) as { name: string }).name, "admin");
  const rec = readUsers(state).users.get("admin");
  assert.ok(rec && (await checkPassword(PASSWORD, rec.password)), "the trailing newline is not part of it");
  assert.equal((await fs.stat(readUsers(state).file)).mode & 0o777, 0o600);

  const dup = await run("dup", ["user", "add", "admin", "--stdin"], `${OTHER}\n`);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /user admin already exists/);
  assert.match(dup.stderr, /bsched user passwd admin/);
  const short = await run("short", ["user", "add", "bob", "--stdin"], "short\n");
  assert.equal(short.code, 2);
  assert.match(short.stderr, /8 to 1024 characters/);
  const bad = await run("bad", ["user", "add", "../etc", "--stdin"], `${PASSWORD}\n`);
  assert.equal(bad.code, 2);
  // Not a terminal and no --stdin: refused rather than echoed.
  const notty = await run("notty", ["user", "add", "carol"]);
  assert.equal(notty.code, 2);
  assert.match(notty.stderr, /--stdin/);

  const list = await run("list", ["user", "list", "--json"]);
  assert.equal(list.code, 0);
  const listed = JSON.parse(list.stdout) as { users: Record<string, unknown>[] };
  assert.deepEqual(
    listed.users.map((u) => u.name),
    ["admin"],
  );
  assert.deepEqual(
    Object.keys(listed.users[0] ?? {}).sort(),
    ["createdAt", "name", "passwordSetAt"],
    "never a hash",
  );
  assert.match((await run("list-text", ["user", "list"])).stdout, /^admin {2}added /);

  const pw = await run("passwd", ["user", "passwd", "admin", "--stdin"], OTHER);
  assert.equal(pw.code, 0, pw.stderr);
  const after = readUsers(state).users.get("admin");
  assert.ok(after && (await checkPassword(OTHER, after.password)));
  assert.equal((await run("passwd-none", ["user", "passwd", "nobody", "--stdin"], OTHER)).code, 1);

  const rmNone = await run("rm-none", ["user", "remove", "nobody"]);
  assert.equal(rmNone.code, 1);
  assert.match(rmNone.stderr, /no user nobody/);
  assert.match(rmNone.stderr, /users: admin/);
  const rm = await run("rm", ["user", "remove", "admin"]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stderr, /no user is left/);
  assert.equal(readUsers(state).users.size, 0);
  assert.match((await run("list-empty", ["user", "list"])).stderr, /no users/);

  assertNoSecrets({ PASSWORD, OTHER }, { ...outputs, "the process list": await ps.stop() });
  await fs.rm(s.dir, { recursive: true, force: true });
});

const hasScript = spawnSync("script", ["--version"]).status === 0;

test("bsched user add on a terminal: asked twice without echo; two different entries add nobody", {
  skip: hasScript ? false : "util-linux `script` is missing (Debian bsdutils)",
}, async () => {
  const s = await makeServer({ prefix: "bsched-user-tty-" });
  const state = loadConfig(s.config).state;
  const onTerminal = async (name: string, first: string, second: string) => {
    const cmd = [process.execPath, BIN, "user", "add", name, "--config", s.config]
      .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
      .join(" ");
    const child = spawn("script", ["-qec", cmd, "/dev/null"], {
      env: { ...process.env, BSCHED_CONFIG: undefined },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const answers: [RegExp, string][] = [
      [/password: /, `${first}\r`],
      [/again: /, `${second}\r`],
    ];
    let seen = "";
    let next = 0;
    child.stdout.on("data", (d) => {
      seen += d;
      const a = answers[next];
      if (a?.[0].test(seen)) {
        next++;
        seen = "";
        child.stdin.write(a[1]);
      }
    });
    const r = await collect(child as never);
    child.stdin.destroy();
    return r;
  };
  const ok = await onTerminal("admin", PASSWORD, PASSWORD);
  assert.equal(ok.code, 0, ok.stdout);
  assertNoSecrets({ PASSWORD }, { terminal: ok.stdout + ok.stderr });
  const differ = await onTerminal("bob", PASSWORD, OTHER);
  assert.equal(differ.code, 2, differ.stdout);
  assert.match(differ.stdout, /the two entries differ/);
  assertNoSecrets({ PASSWORD, OTHER }, { terminal: differ.stdout + differ.stderr });
  assert.deepEqual([...readUsers(state).users.keys()], ["admin"]);
  await fs.rm(s.dir, { recursive: true, force: true });
});
