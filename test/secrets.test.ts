import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { type TestContext, test } from "node:test";
import { BschedError } from "../src/core/errors.ts";
import { listSecrets, removeSecret, setSecret } from "../src/ops/secrets.ts";
import { systemClock } from "../src/platform/clock.ts";
import { keyId } from "../src/secrets/key.ts";
import { resolveSecret } from "../src/secrets/secrets.ts";
import { BIN, collect, runCli, tempDir } from "./helpers/cli.ts";
import { assertNoSecrets, filesUnder } from "./helpers/leaks.ts";

/** Values no message, file or output may ever show. */
const VALUE = "S3cr3t-Value-7f1e9a";
const OTHER = "An0ther-Secret-c41d";

/** An environment with no key source: the key is the state folder's. */
const NO_ENV: NodeJS.ProcessEnv = {};

async function stateDir(t: TestContext): Promise<string> {
  const dir = await tempDir("bsched-secrets-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return path.join(dir, "state");
}

async function set(state: string, name: string, value: string, env: NodeJS.ProcessEnv = NO_ENV) {
  return setSecret({ state, name, value, clock: systemClock, env });
}

/** The error `fn` throws, which must be a BschedError whose message and hint hold none of the values. */
function failure(fn: () => unknown, code: string): BschedError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof BschedError, `a BschedError, got ${String(e)}`);
    assertNoSecrets({ VALUE, OTHER }, { message: e.message, hint: e.hint ?? "" });
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

test("store: set then resolve gives the value back; files 0600; the value is nowhere in clear", async (t) => {
  const state = await stateDir(t);
  const r = await set(state, "vault", VALUE);
  assert.equal(r.keyCreated, true);
  assert.equal(r.replaced, false);
  assert.equal(resolveSecret("secret:vault", state, "destinations.vault.password", NO_ENV), VALUE);
  // A plain value is itself (with a config warning elsewhere).
  assert.equal(resolveSecret("plain", state, "destinations.vault.password", NO_ENV), "plain");
  for (const f of ["secrets.json", "secret.key"]) {
    const st = await fs.stat(path.join(state, f));
    assert.equal(st.mode & 0o777, 0o600, f);
  }
  assertNoSecrets({ VALUE }, await filesUnder(state));
  // Unicode, spaces and a second secret; replacing one keeps the other.
  await set(state, "svc.login_2", `pässwörd ${OTHER} ✓`);
  const again = await set(state, "vault", OTHER);
  assert.equal(again.replaced, true);
  assert.equal(again.keyCreated, false);
  assert.equal(resolveSecret("secret:vault", state, "k", NO_ENV), OTHER);
  assert.equal(resolveSecret("secret:svc.login_2", state, "k", NO_ENV), `pässwörd ${OTHER} ✓`);
  assert.deepEqual(
    listSecrets(state).secrets.map((s) => s.name),
    ["svc.login_2", "vault"],
  );
  await removeSecret({ state, name: "vault", clock: systemClock });
  assert.deepEqual(
    listSecrets(state).secrets.map((s) => s.name),
    ["svc.login_2"],
  );
  const gone = failure(
    () => resolveSecret("secret:vault", state, "destinations.vault.password", NO_ENV),
    "SECRET_MISSING",
  );
  assert.match(gone.hint ?? "", /bsched secret set vault/);
});

test("store: two secret set at once both land (the store's lock)", async (t) => {
  const state = await stateDir(t);
  await set(state, "first", VALUE);
  await Promise.all(Array.from({ length: 6 }, (_, i) => set(state, `n${i}`, `${OTHER}${i}`)));
  for (let i = 0; i < 6; i++) assert.equal(resolveSecret(`secret:n${i}`, state, "k", NO_ENV), `${OTHER}${i}`);
  assert.equal((await fs.readdir(state)).filter((f) => f.includes("tmp") || f.endsWith(".lock")).length, 0);
});

test("store: a value moved to another name does not decrypt (the name is authenticated)", async (t) => {
  const state = await stateDir(t);
  await set(state, "a", VALUE);
  await set(state, "b", OTHER);
  const file = path.join(state, "secrets.json");
  const doc = JSON.parse(await fs.readFile(file, "utf8"));
  doc.secrets.b = doc.secrets.a;
  await fs.writeFile(file, JSON.stringify(doc));
  const e = failure(
    () => resolveSecret("secret:b", state, "destinations.x.password", NO_ENV),
    "SECRET_UNREADABLE",
  );
  assert.match(
    e.message,
    /destinations\.x\.password: the secret "b" in .*secrets\.json does not authenticate/,
  );
  assert.equal(resolveSecret("secret:a", state, "k", NO_ENV), VALUE);
});

test("store: a tampered value, a damaged or foreign file: a clear error naming the file, never garbage", async (t) => {
  const state = await stateDir(t);
  await set(state, "a", VALUE);
  const file = path.join(state, "secrets.json");
  const good = await fs.readFile(file, "utf8");
  const doc = JSON.parse(good);
  const bytes = Buffer.from(doc.secrets.a.value, "base64");
  bytes[0] = (bytes[0] as number) ^ 1;
  doc.secrets.a.value = bytes.toString("base64");
  await fs.writeFile(file, JSON.stringify(doc));
  failure(() => resolveSecret("secret:a", state, "k", NO_ENV), "SECRET_UNREADABLE");

  for (const damaged of [
    good.slice(0, good.length / 2),
    "[]",
    '{"format":"other"}',
    good.replace(/"iv": "[^"]+"/, '"iv": "AAAA"'),
  ]) {
    await fs.writeFile(file, damaged);
    const e = failure(() => resolveSecret("secret:a", state, "k", NO_ENV), "SECRET_UNREADABLE");
    assert.ok(e.message.includes(file), e.message);
    assert.match(e.message, /damaged/);
    // A change refuses too, and leaves the damaged file as it was.
    await assert.rejects(set(state, "b", OTHER), (x: BschedError) => x.code === "SECRET_UNREADABLE");
    assert.equal(await fs.readFile(file, "utf8"), damaged);
  }
});

test("store: another key is told apart from damage; no new key is made over stored values", async (t) => {
  const state = await stateDir(t);
  await set(state, "a", VALUE);
  const keyFile = path.join(state, "secret.key");
  const original = await fs.readFile(keyFile);
  await fs.writeFile(keyFile, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
  const e = failure(
    () => resolveSecret("secret:a", state, "destinations.vault.password", NO_ENV),
    "SECRET_UNREADABLE",
  );
  assert.match(e.message, /^destinations\.vault\.password: .*encrypted with another key than .*secret\.key/);
  await assert.rejects(
    set(state, "b", OTHER),
    (x: BschedError) => x.code === "SECRET_UNREADABLE" && /another key/.test(x.message),
  );

  // The key lost: resolve says so, and set refuses to make a new one (the old values would be lost).
  await fs.rm(keyFile);
  const lost = failure(() => resolveSecret("secret:a", state, "k", NO_ENV), "SECRET_UNREADABLE");
  assert.match(lost.message, /its key .*secret\.key is missing/);
  await assert.rejects(set(state, "b", OTHER), (x: BschedError) =>
    /refusing to make a new key/.test(x.message),
  );
  await assert.rejects(fs.stat(keyFile), { code: "ENOENT" });

  await fs.writeFile(keyFile, original, { mode: 0o600 });
  assert.equal(resolveSecret("secret:a", state, "k", NO_ENV), VALUE);
});

test("key file: refused when others may read it, or when it is not 32 bytes; raw, hex and base64 accepted", async (t) => {
  const state = await stateDir(t);
  await set(state, "a", VALUE);
  const keyFile = path.join(state, "secret.key");
  await fs.chmod(keyFile, 0o640);
  const e = failure(() => resolveSecret("secret:a", state, "k", NO_ENV), "SECRET_UNREADABLE");
  assert.match(e.message, /may be read or written by others \(mode 640\)/);
  assert.match(e.hint ?? "", /chmod 600 .*secret\.key/);
  await assert.rejects(set(state, "b", OTHER), (x: BschedError) => /mode 640/.test(x.message));
  await fs.chmod(keyFile, 0o600);

  const key = Buffer.from((await fs.readFile(keyFile, "utf8")).trim(), "hex");
  for (const form of [key, key.toString("base64"), `  ${key.toString("hex").toUpperCase()}\r\n`]) {
    await fs.writeFile(keyFile, form);
    assert.equal(resolveSecret("secret:a", state, "k", NO_ENV), VALUE);
  }
  await fs.writeFile(keyFile, "too short");
  const bad = failure(() => resolveSecret("secret:a", state, "k", NO_ENV), "SECRET_UNREADABLE");
  assert.match(bad.message, /is not a 32-byte key/);
});

test("key from the environment ($BSCHED_SECRET_KEY_FILE) or systemd credentials; the state folder holds no key then", async (t) => {
  const state = await stateDir(t);
  const outside = path.dirname(state);
  const key = randomBytes(32);
  const keyFile = path.join(outside, "etc-secret.key");
  await fs.writeFile(keyFile, key, { mode: 0o600 });
  const env = { BSCHED_SECRET_KEY_FILE: keyFile };
  const r = await set(state, "a", VALUE, env);
  assert.equal(r.keyFile, keyFile);
  assert.equal(r.keyFrom, "$BSCHED_SECRET_KEY_FILE");
  assert.equal(r.keyCreated, false);
  await assert.rejects(fs.stat(path.join(state, "secret.key")), { code: "ENOENT" });
  assert.equal(resolveSecret("secret:a", state, "k", env), VALUE);
  // Without the key the store is unreadable: another key (a fresh state key) is refused.
  failure(() => resolveSecret("secret:a", state, "k", NO_ENV), "SECRET_UNREADABLE");

  // systemd: LoadCredential=bsched-secret-key:… puts the same key in $CREDENTIALS_DIRECTORY.
  const creds = path.join(outside, "creds");
  await fs.mkdir(creds);
  await fs.writeFile(path.join(creds, "bsched-secret-key"), key.toString("hex"), { mode: 0o400 });
  const systemd = { CREDENTIALS_DIRECTORY: creds };
  assert.equal(resolveSecret("secret:a", state, "k", systemd), VALUE);
  const viaSystemd = await set(state, "b", OTHER, systemd);
  assert.equal(viaSystemd.keyFrom, "systemd credential");
  assert.equal(resolveSecret("secret:b", state, "k", env), OTHER);

  // A key file named by the environment that is missing is an error, never created.
  const missing = { BSCHED_SECRET_KEY_FILE: path.join(outside, "nope.key") };
  await assert.rejects(
    set(state, "c", VALUE, missing),
    (x: BschedError) => x.code === "SECRET_UNREADABLE" && /BSCHED_SECRET_KEY_FILE/.test(x.message),
  );
  await assert.rejects(fs.stat(missing.BSCHED_SECRET_KEY_FILE), { code: "ENOENT" });
  assert.equal(keyId(key).length, 16);
});

test("a BschedError from a failing resolveSecret names the config key and the secret's NAME, never its value", async (t) => {
  const state = await stateDir(t);
  const missing = failure(
    () => resolveSecret("secret:vault", state, "destinations.vault.password", NO_ENV),
    "SECRET_MISSING",
  );
  assert.match(missing.message, /destinations\.vault\.password/);
  assert.match(missing.message, /"vault"/);

  await set(state, "vault", VALUE);
  await fs.writeFile(path.join(state, "secret.key"), randomBytes(32), { mode: 0o600 });
  const wrong = failure(
    () => resolveSecret("secret:vault", state, "destinations.vault.password", NO_ENV),
    "SECRET_UNREADABLE",
  );
  assert.match(wrong.message, /destinations\.vault\.password/);
  const bad = failure(
    () => resolveSecret("secret:../x", state, "server.serviceLogin.password", NO_ENV),
    "CONFIG_INVALID",
  );
  assert.match(bad.message, /server\.serviceLogin\.password/);
  // Through the CLI's printer, with --json: still no value.
  assert.ok(!JSON.stringify({ message: wrong.message, hint: wrong.hint, code: wrong.code }).includes(VALUE));
});

test("names: letters, digits, - _ . only; an empty value is refused", async (t) => {
  const state = await stateDir(t);
  for (const bad of ["", "-x", "a/b", "a b", "..", "x".repeat(65), "é"]) {
    await assert.rejects(set(state, bad, VALUE), (e: BschedError) => e.code === "USAGE", bad);
  }
  await assert.rejects(
    set(state, "ok", ""),
    (e: BschedError) => e.code === "USAGE" && /empty/.test(e.message),
  );
  await assert.rejects(fs.stat(path.join(state, "secrets.json")), { code: "ENOENT" });
});

// --- The CLI -------------------------------------------------------------------------------

async function cliConfig(t: TestContext): Promise<{ dir: string; config: string; state: string }> {
  const dir = await tempDir("bsched-secrets-cli-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "Data"));
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:\n  root: ${JSON.stringify(dir)}\nsets:\n  data: { letter: D, source: Data, frequency: now }\n`,
  );
  return { dir, config, state: path.join(dir, ".bsched") };
}

/** The CLI with `input` on its stdin. */
function runWithInput(args: string[], input: string, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: {
      ...process.env,
      BSCHED_CONFIG: undefined,
      BSCHED_SECRET_KEY_FILE: undefined,
      CREDENTIALS_DIRECTORY: undefined,
      ...env,
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.end(input);
  return collect(child as never);
}

test("CLI: secret set --stdin, list (--json), remove; the value never in an output; never an argument", async (t) => {
  const { config, state } = await cliConfig(t);
  const setR = await runWithInput(["secret", "set", "offsite", "--stdin", "--config", config], `${VALUE}\n`);
  assert.equal(setR.code, 0, setR.stderr);
  assert.match(setR.stdout, /secret offsite stored in .*secrets\.json/);
  assert.match(setR.stderr, /created the key .*secret\.key .*keep a copy/);
  assert.equal(resolveSecret("secret:offsite", state, "k", NO_ENV), VALUE, "one trailing newline dropped");

  const json = await runWithInput(
    ["secret", "set", "svc", "--stdin", "--json", "--config", config],
    `${OTHER}\r\n`,
  );
  assert.equal(json.code, 0, json.stderr);
  assert.equal(JSON.parse(json.stdout).name, "svc");
  assert.equal(resolveSecret("secret:svc", state, "k", NO_ENV), OTHER);

  const list = await runCli(["secret", "list", "--config", config]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^offsite {2}set \d{4}-\d\d-\d\dT.*\nsvc {2}set /);
  const listJson = await runCli(["secret", "list", "--json", "--config", config]);
  assert.deepEqual(
    JSON.parse(listJson.stdout).secrets.map((s: { name: string }) => s.name),
    ["offsite", "svc"],
  );

  // The value as an argument: refused by the parser, and not echoed back.
  const arg = await runCli(["secret", "set", "x", VALUE, "--json", "--config", config]);
  assert.equal(arg.code, 2);
  // Not a terminal and no --stdin: refused, pointing at --stdin.
  const noTty = await runWithInput(["secret", "set", "x", "--config", config], `${VALUE}\n`);
  assert.equal(noTty.code, 2);
  assert.match(noTty.stderr, /stdin is not a terminal/);
  assert.match(noTty.stderr, /--stdin/);
  assert.deepEqual(
    listSecrets(state).secrets.map((s) => s.name),
    ["offsite", "svc"],
  );

  const rm = await runCli(["secret", "remove", "offsite", "--config", config]);
  assert.equal(rm.code, 0, rm.stderr);
  const rmAgain = await runCli(["secret", "remove", "offsite", "--json", "--config", config]);
  assert.equal(rmAgain.code, 1);
  assert.equal(JSON.parse(rmAgain.stdout).error.code, "SECRET_MISSING");

  const outputs = { setR, json, list, listJson, arg, noTty, rm, rmAgain };
  assertNoSecrets(
    { VALUE, OTHER },
    Object.fromEntries(Object.entries(outputs).map(([k, r]) => [k, r.stdout + r.stderr])),
  );
});

const hasScript = spawnSync("script", ["--version"]).status === 0;

/** The CLI on a pseudo-terminal (util-linux `script`): each answer is typed once `prompt` shows. */
async function onTerminal(args: string[], answers: [RegExp, string][]) {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const child = spawn("script", ["-qec", cmd, "/dev/null"], {
    env: {
      ...process.env,
      BSCHED_CONFIG: undefined,
      BSCHED_SECRET_KEY_FILE: undefined,
      CREDENTIALS_DIRECTORY: undefined,
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
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
}

test("CLI: on a terminal the value is asked twice without echo; two different entries store nothing", {
  skip: hasScript ? false : "util-linux `script` is missing (Debian bsdutils)",
}, async (t) => {
  const { config, state } = await cliConfig(t);
  const ok = await onTerminal(
    ["secret", "set", "tty", "--config", config],
    [
      [/value of secret tty: /, `${VALUE}\r`],
      [/again: /, `${VALUE}\r`],
    ],
  );
  assert.equal(ok.code, 0, ok.stdout);
  assertNoSecrets({ VALUE }, { terminal: ok.stdout + ok.stderr });
  assert.equal(resolveSecret("secret:tty", state, "k", NO_ENV), VALUE);

  const differ = await onTerminal(
    ["secret", "set", "tty2", "--config", config],
    [
      [/value of secret tty2: /, `${VALUE}\r`],
      [/again: /, `${OTHER}\r`],
    ],
  );
  assert.equal(differ.code, 2, differ.stdout);
  assert.match(differ.stdout, /the two entries differ; nothing stored/);
  assertNoSecrets({ VALUE, OTHER }, { terminal: differ.stdout + differ.stderr });
  assert.deepEqual(
    listSecrets(state).secrets.map((s) => s.name),
    ["tty"],
  );
});

test("CLI: while secret set holds the value, the process list and its environment do not show it", async (t) => {
  const { config, state } = await cliConfig(t);
  const child = spawn(process.execPath, [BIN, "secret", "set", "ps", "--stdin", "--config", config], {
    env: {
      ...process.env,
      BSCHED_CONFIG: undefined,
      BSCHED_SECRET_KEY_FILE: undefined,
      CREDENTIALS_DIRECTORY: undefined,
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const done = collect(child as never);
  // The value is written but stdin left open: the command has read it and waits for the end.
  child.stdin.write(VALUE);
  const pid = child.pid as number;
  let seen = "";
  for (let i = 0; i < 50 && !seen.includes("secret"); i++) {
    seen = spawnSync("ps", ["-o", "args=", "-p", String(pid)], { encoding: "utf8" }).stdout;
    if (!seen.includes("secret")) await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(seen, /secret set ps --stdin/);
  const all = spawnSync("ps", ["-eww", "-o", "args="], { encoding: "utf8" }).stdout;
  const environ = await fs.readFile(`/proc/${pid}/environ`, "utf8").catch(() => "");
  child.stdin.end();
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  assertNoSecrets({ VALUE }, { ps: all, "/proc/PID/environ": environ, output: r.stdout + r.stderr });
  assert.equal(resolveSecret("secret:ps", state, "k", NO_ENV), VALUE);
});
