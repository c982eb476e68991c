import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { BIN, runCli, tempDir } from "./helpers/cli.ts";

/*
 * `bsched service install|uninstall` (issue 14 item 4): the unit as printed and as written into a
 * test's own folder (never /etc), checked by systemd's own `systemd-analyze verify`.
 */

const required = process.env.BSCHED_TEST_SERVERS === "required";
const haveAnalyze = spawnSync("systemd-analyze", ["--version"], { stdio: "ignore" }).status === 0;

/** A root whose set `video` has a specific folder and whose log goes to a file: both must be writable. */
async function setup(t: { after(fn: () => Promise<void>): void }) {
  // A space and a % in the paths: the unit must quote the one and escape the other.
  const dir = path.join(await tempDir("bsched-service-"), "my 100% server");
  t.after(() => fs.rm(path.dirname(dir), { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: UTC
  log: { file: logs/bsched.log }
sets:
  data:
    letter: D
    source: Data
  video:
    letter: V
    source: Video
    folder: ${path.join(dir, "video-backups")}
`,
  );
  return { dir, config };
}

function verify(unit: string, t: { skip(msg: string): void }): void {
  if (!haveAnalyze) {
    if (required) assert.fail("systemd-analyze is missing: install the Debian package systemd");
    t.skip("systemd-analyze is missing: install the Debian package systemd");
    return;
  }
  const r = spawnSync("systemd-analyze", ["verify", unit], { encoding: "utf8" });
  assert.equal(r.status, 0, `systemd-analyze verify ${unit}:\n${r.stdout}${r.stderr}`);
  // verify exits 0 on some warnings: none about our unit may appear.
  assert.doesNotMatch(r.stderr, new RegExp(`${path.basename(unit)}:\\d+:`), r.stderr);
}

test("service install --print: the unit runs the project's node and bin with the config, as its own user, read-only but for the backup, state and log folders", async (t) => {
  const { dir, config } = await setup(t);
  const r = await runCli(["service", "install", "--print", "--config", config], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const unit = r.stdout;
  const q = (s: string) => `"${s.replaceAll("%", "%%")}"`;
  const line = (key: string) =>
    unit
      .split("\n")
      .find((l) => l.startsWith(`${key}=`))
      ?.slice(key.length + 1);
  assert.equal(line("User"), "bsched");
  assert.equal(line("ExecStart"), `${process.execPath} ${BIN} daemon --config ${q(config)}`);
  assert.equal(line("ProtectSystem"), "strict");
  assert.equal(line("NoNewPrivileges"), "yes");
  assert.equal(line("PrivateTmp"), "yes");
  assert.equal(line("Restart"), "on-failure");
  assert.equal(line("StandardError"), "journal");
  assert.equal(
    line("ReadWritePaths"),
    [
      path.join(dir, "logs"),
      path.join(dir, "srv", ".bsched"),
      path.join(dir, "srv", "Backup"),
      path.join(dir, "video-backups"),
    ]
      .map((p) => q(`-${p}`))
      .join(" "),
    "exactly the backup folders, the state folder and the log's folder",
  );
  const analyzed = path.join(dir, "bsched.service");
  await fs.writeFile(analyzed, unit);
  verify(analyzed, t);

  // --writable-sources: the sets' source folders too (for the set lock held during a backup).
  const w = await runCli(["service", "install", "--print", "--writable-sources", "--config", config], {
    cwd: dir,
  });
  assert.equal(w.code, 0, w.stderr);
  const rw = w.stdout.split("\n").find((l) => l.startsWith("ReadWritePaths=")) ?? "";
  for (const src of [path.join(dir, "srv", "Data"), path.join(dir, "srv", "Video")])
    assert.ok(rw.includes(q(`-${src}`)), rw);
});

/** The service user of these tests: created by the first install on a machine (useradd --system), then kept, as the sshd tests' user is. */
const TEST_USER = "bsched-test";
const userExists = () => spawnSync("id", ["-u", TEST_USER]).status === 0;

test("service install --unit-dir creates the user if missing, gives it the folders, writes the unit there (nothing temporary left); uninstall removes it", async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip("install gives the folders to the service user (chown): run as root");
    return;
  }
  const { dir, config } = await setup(t);
  const units = path.join(dir, "units");
  const before = userExists();
  const r = await runCli(
    ["service", "install", "--user", TEST_USER, "--unit-dir", units, "--json", "--config", config],
    { cwd: dir },
  );
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as {
    unit: string;
    user: string;
    userCreated: boolean;
    started: boolean;
    writable: string[];
  };
  assert.equal(res.unit, path.join(units, "bsched.service"));
  assert.deepEqual([res.user, res.userCreated, res.started], [TEST_USER, !before, false]);
  assert.ok(userExists(), "the user exists now");
  assert.deepEqual(await fs.readdir(units), ["bsched.service"], "no temporary file left");
  const uid = Number(spawnSync("id", ["-u", TEST_USER], { encoding: "utf8" }).stdout.trim());
  for (const p of res.writable) assert.equal((await fs.stat(p)).uid, uid, `${p} belongs to ${TEST_USER}`);
  assert.match(await fs.readFile(res.unit, "utf8"), new RegExp(`^User=${TEST_USER}$`, "m"));
  if (res.userCreated) t.diagnostic(`created the system user ${TEST_USER} (kept for the next runs)`);
  verify(res.unit, t);

  const st = await runCli(["status", "--config", config], { cwd: dir });
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /^service: (not installed|installed)/m);

  const u = await runCli(["service", "uninstall", "--unit-dir", units, "--json"], { cwd: dir });
  assert.equal(u.code, 0, u.stderr);
  assert.deepEqual(JSON.parse(u.stdout), { unit: res.unit, removed: true });
  assert.deepEqual(await fs.readdir(units), []);
  const again = await runCli(["service", "uninstall", "--unit-dir", units], { cwd: dir });
  assert.equal(again.code, 0);
  assert.match(again.stderr, /is not installed: nothing to do/);
});

test("service install: a bad user name is refused before anything is written", async (t) => {
  const { dir, config } = await setup(t);
  const units = path.join(dir, "units");
  const r = await runCli(
    ["service", "install", "--user", "bad name;rm", "--unit-dir", units, "--config", config],
    {
      cwd: dir,
    },
  );
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--user bad name;rm: not a user name/);
  await assert.rejects(fs.access(units));
});
