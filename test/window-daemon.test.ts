import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { runCli, tempDir } from "./helpers/cli.ts";
import { assertNoSecrets, sampleProcessList } from "./helpers/leaks.ts";
import { windowDaemon as daemon } from "./helpers/window-daemon.ts";

const PASSWORD = `window-${Math.random().toString(36).slice(2)}-pw`;

test("a real daemon serves the window on loopback: the setup link once, a session on every route, a CLI-added user, logged out by a restart", async (t) => {
  const dir = await tempDir("bsched-window-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  await fs.writeFile(path.join(dir, "srv", "Data", "db.dat"), "cardholders");
  const config = path.join(dir, "bsched.yaml");
  const yaml = `server:
  root: srv
  timezone: UTC
  web: { listen: "127.0.0.1:0" }   # a free port: the log says which
sets:
  data:
    letter: D
    source: Data
    frequency: now
`;
  await fs.writeFile(config, yaml);
  const ps = sampleProcessList(100);
  const d = daemon(config, dir);
  t.after(() => {
    if (d.child.exitCode === null) d.child.kill("SIGKILL");
  });
  const at = await d.waitFor((m) => m.startsWith("window at "), "window at URL");
  const url = at.slice("window at ".length);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const link = await d.waitFor((m) => m.includes("/setup#token="), "setup link");
  const token = /#token=([A-Za-z0-9_-]+)/.exec(link)?.[1] as string;
  assert.ok(link.includes(`${url}setup#token=`), link);

  const api = (p: string, init: RequestInit = {}) => fetch(new URL(p, url), init);
  const json = (body: object, headers: Record<string, string> = {}) => ({
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  assert.equal((await api("/api/status")).status, 401);
  assert.equal((await api("/api/openapi.json")).status, 401);
  assert.equal((await api("/api/events")).status, 401);

  const setup = await api("/api/setup", json({ token, user: "admin", password: PASSWORD }));
  assert.equal(setup.status, 200);
  const cookie = (setup.headers.get("set-cookie") ?? "").split(";")[0] as string;
  assert.match(cookie, /^bsched_session=/);
  const { csrf } = (await setup.json()) as { csrf: string };
  const st = await api("/api/status", { headers: { cookie } });
  assert.equal(st.status, 200);
  assert.equal(
    (await api("/api/setup", json({ token, user: "eve", password: PASSWORD }))).status,
    401,
    "once only",
  );

  // `bsched status` says where the window is.
  const status = await runCli(["status", "--json", "--config", config], { cwd: dir });
  assert.equal(status.code, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as { daemon: { window: string } }).daemon.window, url);

  // A user added with the CLI while the daemon runs logs in at once.
  const add = await runCli(["user", "add", "bob", "--stdin", "--config", config], {
    cwd: dir,
    input: `${PASSWORD}\n`,
  });
  assert.equal(add.code, 0, add.stderr);
  const bob = await api("/api/login", json({ user: "bob", password: PASSWORD }));
  assert.equal(bob.status, 200);
  assert.equal((await api("/api/logout", json({}, { cookie }))).status, 403, "no CSRF token");
  assert.equal((await api("/api/logout", json({}, { cookie, "x-csrf-token": csrf }))).status, 200);

  // A changed server.web is for the next start.
  await fs.writeFile(config, yaml.replace("127.0.0.1:0", "127.0.0.1:1"));
  await d.waitFor(
    (m) => m === "server.web changes take effect when the daemon restarts",
    "the restart notice",
  );
  await fs.writeFile(config, yaml);

  d.child.kill("SIGTERM");
  assert.equal(await d.closed, 0, d.stderr());
  const log1 = d.stderr();
  await assert.rejects(fs.access(path.join(dir, "srv", ".bsched", "window.json")), "removed at the stop");

  // Restarted: users exist, so no link; the old sessions are gone (they live in memory).
  const bobCookie = (bob.headers.get("set-cookie") ?? "").split(";")[0] as string;
  const d2 = daemon(config, dir);
  t.after(() => {
    if (d2.child.exitCode === null) d2.child.kill("SIGKILL");
  });
  const url2 = (await d2.waitFor((m) => m.startsWith("window at "), "window at URL")).slice(
    "window at ".length,
  );
  assert.equal((await fetch(new URL("/api/status", url2), { headers: { cookie: bobCookie } })).status, 401);
  d2.child.kill("SIGTERM");
  assert.equal(await d2.closed, 0, d2.stderr());
  assert.doesNotMatch(d2.stderr(), /setup#token=/);

  assertNoSecrets(
    { password: PASSWORD },
    { "the daemon's log": log1 + d2.stderr(), "the process list": await ps.stop() },
  );
});
