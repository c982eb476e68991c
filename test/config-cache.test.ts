import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { cachedCheck } from "../src/config/cache.ts";
import { checkConfig, loadConfig, parseConfig } from "../src/config/load.ts";
import { tempDir } from "./helpers/cli.ts";

// The cached verdict of an unchanged config (src/config/cache.ts, docs/design.md "Start-up"):
// never stale, never foreign, never a secret's value, never a crash.

const TEXT = `server:
  root: srv
  timezone: UTC
sets:
  data:
    letter: D
    source: Data
`;

/** A config file, and a cache folder of its own (as $XDG_CACHE_HOME). */
async function setup(text = TEXT) {
  const dir = await tempDir();
  const file = path.join(dir, "bsched.yaml");
  await fs.writeFile(file, text);
  const env: NodeJS.ProcessEnv = { XDG_CACHE_HOME: path.join(dir, "cache") };
  const folder = path.join(dir, "cache", "bsched");
  let checks = 0;
  /** cachedCheck of `t` as the file's text, with the real check (counted). */
  const run = (t = text) =>
    cachedCheck(
      file,
      t,
      () => {
        checks++;
        return checkConfig(t, file);
      },
      env,
    );
  const entries = async () => (await fs.readdir(folder).catch(() => [])).map((f) => path.join(folder, f));
  return { dir, file, env, folder, run, entries, checks: () => checks };
}

test("config cache: the same bytes again are read back (0600), equal to a full check", async () => {
  const c = await setup();
  const first = c.run();
  assert.equal(c.checks(), 1);
  const [entry, ...more] = await c.entries();
  assert.ok(entry !== undefined && more.length === 0, "one entry, for this config");
  assert.equal((await fs.stat(entry)).mode & 0o777, 0o600);
  assert.equal((await fs.stat(c.folder)).mode & 0o777 & 0o077, 0);
  const second = c.run();
  assert.equal(c.checks(), 1, "read back, not checked");
  assert.deepStrictEqual(second, first);
  // Touched but the same bytes: still the same verdict, read back.
  const later = new Date(Date.now() + 60_000);
  await fs.utimes(c.file, later, later);
  assert.deepStrictEqual(c.run(), first);
  assert.equal(c.checks(), 1);
});

test("config cache: an edited file is checked again, and its errors are the full check's", async () => {
  const c = await setup();
  c.run();
  const edited = TEXT.replace("letter: D", "letter: E");
  assert.equal(c.run(edited).raw.sets.data?.letter, "E");
  assert.equal(c.checks(), 2);
  // An invalid edit throws as uncached, every time (an error is never kept).
  const bad = TEXT.replace("letter: D", "letter: dd");
  const expected = (() => {
    try {
      checkConfig(bad, c.file);
    } catch (e) {
      return e as Error;
    }
    assert.fail("the bad config was accepted");
  })();
  for (let i = 0; i < 2; i++) assert.throws(() => c.run(bad), { message: expected.message });
  assert.equal(c.checks(), 4);
  // And back to the first bytes: the entry now holds the edit's verdict, so checked again.
  c.run();
  assert.equal(c.checks(), 5);
});

test("config cache: an entry of another version, edited, torn or corrupt is not believed", async () => {
  const c = await setup();
  const good = c.run();
  const [entry] = await c.entries();
  assert.ok(entry);
  const text = await fs.readFile(entry, "utf8");
  const e = JSON.parse(text) as { key: string; raw: string; sum: string };
  const tampered = [
    // Another bsched (or Node, or schema): another key.
    JSON.stringify({ ...e, key: e.key.replace(/^./, (x) => (x === "0" ? "1" : "0")) }),
    // The output edited by hand: its sum no longer matches.
    JSON.stringify({ ...e, raw: e.raw.replace('"letter":"D"', '"letter":"Q"') }),
    JSON.stringify({ ...e, format: 999 }),
    text.slice(0, text.length / 2),
    "not json",
    "",
  ];
  let checks = c.checks();
  for (const t of tampered) {
    await fs.writeFile(entry, t, { mode: 0o600 });
    assert.deepStrictEqual(c.run(), good);
    assert.equal(c.checks(), ++checks, `checked again with the entry ${t.slice(0, 40)}`);
    // …and the entry rewritten good: read back next time.
    assert.deepStrictEqual(c.run(), good);
    assert.equal(c.checks(), checks);
  }
});

test("config cache: an entry or folder others could write, or not this user's, is not used", async () => {
  const c = await setup();
  const good = c.run();
  const [entry] = await c.entries();
  assert.ok(entry);
  await fs.chmod(entry, 0o644);
  assert.deepStrictEqual(c.run(), good);
  assert.equal(c.checks(), 2, "a group-readable entry is not believed");
  await fs.chmod(c.folder, 0o777);
  assert.deepStrictEqual(c.run(), good);
  assert.deepStrictEqual(c.run(), good);
  assert.equal(c.checks(), 4, "a folder anyone may write: never used");
  await fs.chmod(c.folder, 0o700);
  if (process.getuid?.() === 0) {
    // Root can hand the entry to another user: an entry written by someone else.
    c.run();
    const checks = c.checks();
    await fs.chown(entry, 65534, 65534);
    assert.deepStrictEqual(c.run(), good);
    assert.equal(c.checks(), checks + 1, "another user's entry is not believed");
  }
});

test("config cache: a cache folder that cannot be made or written leaves the check as it was", async () => {
  const dir = await tempDir();
  const file = path.join(dir, "bsched.yaml");
  await fs.writeFile(file, TEXT);
  const expected = checkConfig(TEXT, file);
  await fs.writeFile(path.join(dir, "a-file"), "");
  for (const env of [
    { XDG_CACHE_HOME: path.join(dir, "a-file") }, // bsched/ under a file: ENOTDIR
    { XDG_CACHE_HOME: "relative/path", HOME: "relative" }, // no absolute place: no cache
    {},
  ]) {
    for (let i = 0; i < 2; i++)
      assert.deepStrictEqual(
        cachedCheck(file, TEXT, () => checkConfig(TEXT, file), env),
        expected,
      );
  }
  // A read-only cache folder (root writes anyway: made read-only by being a file's place).
  const ro = path.join(dir, "ro");
  await fs.mkdir(path.join(ro, "bsched"), { recursive: true, mode: 0o500 });
  await fs.chmod(path.join(ro, "bsched"), 0o500);
  for (let i = 0; i < 2; i++)
    assert.deepStrictEqual(
      cachedCheck(file, TEXT, () => checkConfig(TEXT, file), { XDG_CACHE_HOME: ro }),
      expected,
    );
});

test("config cache: a config with a plain secret is never kept; secret:NAME references are", async () => {
  const plain = `${TEXT}destinations:
  nas:
    type: sftp
    host: nas.example
    user: backup
    password: hunter2-plain
    hostKey: "SHA256:${"A".repeat(43)}"
    path: /backups
`;
  const c = await setup(plain);
  const r = c.run();
  assert.equal(r.plainSecrets.length, 1);
  c.run();
  assert.equal(c.checks(), 2, "checked every time: its verdict holds the secret");
  assert.deepEqual(await c.entries(), []);
  const ref = plain.replace("hunter2-plain", "secret:nas");
  c.run(ref);
  c.run(ref);
  assert.equal(c.checks(), 3);
  const [entry] = await c.entries();
  assert.ok(entry);
  assert.match(await fs.readFile(entry, "utf8"), /secret:nas/);
});

test("config cache: loadConfig through the cache gives the config and warnings of a full check", async () => {
  const text = `server:
  root: srv
  timezone: UTC
  notify:
    webhook: https://hooks.example/x
    email: { host: smtp.example, from: backup@example.com, to: [ops@example.com], password: "secret:smtp" }
destinations:
  disk2: { type: local, path: /mnt/disk2 }
  s3:
    type: s3
    bucket: b
    accessKeyId: AK
    secretAccessKey: secret:s3
sets:
  data:
    letter: D
    source: Data
    mode: incremental
    frequency: every
    every: 15m
    copies: [disk2, s3]
    keep: { last: 3 }
    drill: { frequency: monthly, day: last }
  logs:
    letter: L
    source: Logs
    folder: disk2
    frequency: monthly
    day: 31
`;
  const c = await setup(text);
  const before = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = c.env.XDG_CACHE_HOME;
  try {
    const expected = parseConfig(text, c.file);
    const warned: string[][] = [[], []];
    const first = loadConfig(c.file, (m) => warned[0]?.push(m));
    assert.equal((await c.entries()).length, 1);
    const second = loadConfig(c.file, (m) => warned[1]?.push(m));
    assert.deepStrictEqual(first, expected);
    assert.deepStrictEqual(second, expected);
    assert.deepStrictEqual(warned[1], warned[0]);
    assert.ok((warned[0]?.length ?? 0) > 0, "the incremental set's warning is given from the cache too");
  } finally {
    if (before === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = before;
  }
});
