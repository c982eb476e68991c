import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { isAlive, makeLiveServer } from "./helpers/live.ts";

async function backupsIn(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => /^\.?D_/.test(n));
}

/** A hook command that appends its phase and environment to `log` (one line per run). */
function recorder(log: string, tag: string): string {
  return `echo "${tag} phase=$BSCHED_PHASE set=$BSCHED_SET backup=$BSCHED_BACKUP status=$BSCHED_STATUS source=$BSCHED_SOURCE" >> '${log}'; echo "said by ${tag}"`;
}

test("hooks: server and set hooks wrap the backup in order, with the documented environment; output goes to the log", async () => {
  const probe = await makeLiveServer();
  const log = path.join(probe.dir, "hooks.log");
  const s = await makeLiveServer({
    serverExtra: `  hooks:\n    before: ${JSON.stringify(recorder(log, "server-before"))}\n    after: ${JSON.stringify(recorder(log, "server-after"))}\n`,
    setExtra: `    hooks:\n      before: ${JSON.stringify(recorder(log, "set-before"))}\n      after: ${JSON.stringify(recorder(log, "set-after"))}\n      timeout: 30\n`,
  });
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const name = JSON.parse(r.stdout).name as string;
  const lines = (await fs.readFile(log, "utf8")).trim().split("\n");
  assert.deepEqual(
    lines.map((l) => l.split(" ")[0]),
    ["server-before", "set-before", "set-after", "server-after"],
  );
  assert.match(lines[1] as string, new RegExp(`phase=before set=data backup= status= source=${s.data}$`));
  assert.match(lines[2] as string, new RegExp(`phase=after set=data backup=${name} status=success source=`));
  assert.match(r.stderr, /hook set before: said by set-before/);
  assert.match(r.stderr, /hook server after: said by server-after/);
  await fs.rm(probe.dir, { recursive: true, force: true });
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("hooks: a failing before aborts the run with nothing written, and after still runs told of the failure", async () => {
  const probe = await makeLiveServer();
  const log = path.join(probe.dir, "hooks.log");
  const s = await makeLiveServer({
    setExtra: `    hooks:\n      before: "echo cannot stop the service >&2; exit 4"\n      after: ${JSON.stringify(recorder(log, "after"))}\n`,
  });
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /the set "before" hook exited with code 4; no backup was made/);
  assert.match(r.stderr, /hook set before: cannot stop the service/);
  assert.equal(JSON.parse(r.stdout).error.code, "HOOK_FAILED");
  assert.deepEqual(await backupsIn(s.backups), [], "no backup and no temporary folder");
  assert.match(await fs.readFile(log, "utf8"), /^after phase=after set=data backup= status=failure/);
  await assert.rejects(
    fs.lstat(path.join(s.data, ".bsched-lock")),
    { code: "ENOENT" },
    "the set lock is released",
  );

  await fs.rm(probe.dir, { recursive: true, force: true });
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("hooks: a hanging before is terminated (with what it started) at its timeout and aborts the run", async () => {
  const probe = await makeLiveServer();
  const pidFile = path.join(probe.dir, "hook.pid");
  const s = await makeLiveServer({
    setExtra: `    hooks:\n      before: "sleep 60 & echo $! > '${pidFile}'; wait"\n      timeout: 1\n`,
  });
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  const r = await s.cli(["backup", "data"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /did not finish within 1 s and was terminated; no backup was made/);
  assert.deepEqual(await backupsIn(s.backups), []);
  const pid = Number(await fs.readFile(pidFile, "utf8"));
  // The whole process group got the signal, not only the shell.
  for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal(isAlive(pid), false, "the hook's child process is gone");
  await fs.rm(probe.dir, { recursive: true, force: true });
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("hooks: a failing after keeps the backup and exits 3 with a warning", async () => {
  const s = await makeLiveServer({ setExtra: `    hooks:\n      after: "exit 2"\n` });
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 3, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.deepEqual(
    summary.warnings.map((w: { code: string }) => w.code),
    ["HOOK_FAILED"],
  );
  assert.deepEqual(await backupsIn(s.backups), [summary.name]);
  const manifest = await fs.readFile(path.join(summary.path, "manifest.json"), "utf8");
  assert.doesNotMatch(manifest, /HOOK_FAILED/, "the backup's own manifest is about its content only");
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("hooks: after is told 'warnings' when the backup had some; a service a hook leaves running is not waited for", async () => {
  const probe = await makeLiveServer();
  const log = path.join(probe.dir, "hooks.log");
  const pidFile = path.join(probe.dir, "service.pid");
  const s = await makeLiveServer({
    setExtra: `    hooks:\n      after: ${JSON.stringify(`${recorder(log, "after")}; sleep 60 & echo $! > '${pidFile}'`)}\n`,
  });
  await fs.writeFile(path.join(s.data, "a.txt"), "a");
  // A FIFO is skipped with a warning: the run ends with warnings.
  await new Promise<void>((resolve, reject) =>
    execFile("mkfifo", [path.join(s.data, "pipe")], (e) => (e ? reject(e) : resolve())),
  );
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(await fs.readFile(log, "utf8"), /status=warnings/);
  const pid = Number(await fs.readFile(pidFile, "utf8"));
  assert.equal(isAlive(pid), true, "the backup ended while the hook's background service still runs");
  process.kill(pid, "SIGKILL");
  await fs.rm(probe.dir, { recursive: true, force: true });
  await fs.rm(s.dir, { recursive: true, force: true });
});
