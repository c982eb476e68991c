import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { type CliResult, runCli } from "./helpers/cli.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync("setpriv", ["--version"]).status === 0;
// Root reads any file whatever its mode, so as root the CLI must run as an unprivileged user.
const skip =
  isRoot && !hasSetpriv ? "runs as root and setpriv is missing: cannot make a file unreadable" : false;

/** Run the CLI as `nobody` when we are root (so chmod 000 really means unreadable), else as ourselves. */
function runUnprivileged(args: string[], cwd: string): Promise<CliResult> {
  const wrap = isRoot ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"] : [];
  return runCli(args, { cwd, wrap, env: { NODE_COMPILE_CACHE: undefined } });
}

async function handToNobody(s: TestServer): Promise<void> {
  if (!isRoot) return;
  await fs.chmod(s.dir, 0o755);
  spawnSync("chown", ["-R", `${NOBODY}:${NOBODY}`, s.dir]);
}

interface Summary {
  name: string;
  mode: string;
  files: number;
  warnings: { path: string; code: string; message: string }[];
}

async function manifestWarnings(s: TestServer, name: string) {
  const raw = JSON.parse(await fs.readFile(path.join(s.backups, name, "manifest.json"), "utf8"));
  return raw.header.warnings as Summary["warnings"];
}

test("an unreadable file and folder are named, recorded in the manifest, exit 3; the rest is backed up", {
  skip,
}, async () => {
  const s = await makeServer();
  await fs.writeFile(path.join(s.data, "ok1"), "one");
  await fs.mkdir(path.join(s.data, "sub"));
  await fs.writeFile(path.join(s.data, "sub/ok2"), "two");
  await fs.writeFile(path.join(s.data, "secret.db"), "no");
  await fs.mkdir(path.join(s.data, "closed"));
  await fs.writeFile(path.join(s.data, "closed/inside"), "hidden");
  await handToNobody(s);
  await fs.chmod(path.join(s.data, "secret.db"), 0o000);
  await fs.chmod(path.join(s.data, "closed"), 0o000);

  const r = await runUnprivileged(["backup", "data", "--json", "--config", s.config], s.dir);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /warning: secret\.db: .*\[UNREADABLE\]/);
  assert.match(r.stderr, /warning: closed: .*\[UNREADABLE\]/);
  const sum = JSON.parse(r.stdout) as Summary;
  assert.equal(sum.files, 2, "ok1 and sub/ok2 are backed up");
  assert.deepEqual(sum.warnings.map((w) => w.path).sort(), ["closed", "secret.db"]);
  assert.deepEqual((await manifestWarnings(s, sum.name)).map((w) => [w.path, w.code]).sort(), [
    ["closed", "UNREADABLE"],
    ["secret.db", "UNREADABLE"],
  ]);
  const out = path.join(s.dir, "out");
  const rr = await s.cli(["restore", "data", "--to", out]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.equal(await fs.readFile(path.join(out, "ok1"), "utf8"), "one");
  assert.equal(await fs.readFile(path.join(out, "sub/ok2"), "utf8"), "two");
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("a file unreadable in an incremental keeps its previous copy, says so, and exits 3", {
  skip,
}, async () => {
  const s = await makeServer();
  await fs.writeFile(path.join(s.data, "db"), "version 1");
  await fs.writeFile(path.join(s.data, "other"), "x");
  await handToNobody(s);
  const full = await runUnprivileged(["backup", "data", "--json", "--config", s.config], s.dir);
  assert.equal(full.code, 0, full.stderr);
  await fs.writeFile(path.join(s.data, "db"), "version 2!");
  await fs.chmod(path.join(s.data, "db"), 0o000);
  const r = await runUnprivileged(["backup", "data", "--json", "--config", s.config], s.dir);
  assert.equal(r.code, 3, r.stderr);
  const sum = JSON.parse(r.stdout) as Summary;
  assert.equal(sum.mode, "incremental");
  const codes = sum.warnings.map((w) => `${w.path}:${w.code}`).sort();
  assert.deepEqual(codes, ["db:KEPT_PREVIOUS", "db:UNREADABLE"]);
  assert.match(r.stderr, /db: .*kept/);
  const out = path.join(s.dir, "out");
  const rr = await s.cli(["restore", "data", "--to", out]);
  assert.equal(rr.code, 0, rr.stderr);
  assert.equal(await fs.readFile(path.join(out, "db"), "utf8"), "version 1");
  await fs.rm(s.dir, { recursive: true, force: true });
});

test("a file name that is not valid UTF-8 is named as such (not as vanished), exit 3, the rest backed up", async () => {
  const s = await makeServer();
  await fs.writeFile(path.join(s.data, "fine"), "ok");
  await fs.writeFile(Buffer.from(`${s.data}/bad\xff name`, "latin1"), "x");
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /not valid UTF-8.*\[UNSUPPORTED_NAME\]/);
  const sum = JSON.parse(r.stdout) as Summary;
  assert.equal(sum.files, 1);
  assert.deepEqual(
    sum.warnings.map((w) => w.code),
    ["UNSUPPORTED_NAME"],
  );
  await fs.rm(s.dir, { recursive: true, force: true });
});
