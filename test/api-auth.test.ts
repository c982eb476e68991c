import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import { test } from "node:test";
import { checkPassword, DUMMY_HASH } from "../src/api/auth/password.ts";
import { readUsers } from "../src/api/auth/users.ts";
import { startWeb } from "../src/api/web.ts";
import { addUser, removeUser, setPassword } from "../src/ops/users.ts";
import { systemClock } from "../src/platform/clock.ts";
import { cookieOf, securedApi } from "./helpers/auth.ts";
import { tempDir } from "./helpers/cli.ts";

const PASSWORD = "correct horse battery";

/** The same token with its last character changed: same length, wrong value. */
function flip(token: string): string {
  return token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");
}

type Inject = Awaited<ReturnType<typeof securedApi>>["app"]["inject"];

async function login(inject: Inject, user: string, password: string, remoteAddress = "127.0.0.1") {
  return inject({ method: "POST", url: "/api/login", payload: { user, password }, remoteAddress });
}

test("users.json: 0600, scrypt with a salt per user and its parameters beside the hash, never the password", async (t) => {
  const { service } = await securedApi(t);
  const state = service.config.state;
  await addUser({ state, name: "alice", password: PASSWORD, clock: systemClock });
  await addUser({ state, name: "bob", password: PASSWORD, clock: systemClock });
  const u = readUsers(state);
  assert.equal((await fs.stat(u.file)).mode & 0o777, 0o600);
  const text = await fs.readFile(u.file, "utf8");
  assert.ok(!text.includes(PASSWORD), "the password is not in the file");
  const a = u.users.get("alice")?.password;
  const b = u.users.get("bob")?.password;
  assert.ok(a && b);
  assert.equal(a.alg, "scrypt");
  assert.ok(a.N >= 1 << 14 && a.r >= 8 && a.p >= 1, JSON.stringify(a));
  assert.notEqual(a.salt, b.salt, "a salt per user");
  assert.notEqual(a.hash, b.hash, "same password, different hashes");
  assert.equal(await checkPassword(PASSWORD, a), true);
  assert.equal(await checkPassword(`${PASSWORD}!`, a), false);
  assert.equal(await checkPassword(PASSWORD, DUMMY_HASH), false);
  await assert.rejects(addUser({ state, name: "alice", password: PASSWORD, clock: systemClock }), {
    code: "USER_EXISTS",
  });
  await assert.rejects(addUser({ state, name: "carol", password: "short", clock: systemClock }), {
    code: "USAGE",
  });
  await assert.rejects(addUser({ state, name: "../x", password: PASSWORD, clock: systemClock }), {
    code: "USAGE",
  });
  // Damaged: refused as such, never read as "no users" (which would reopen the setup link).
  await fs.writeFile(u.file, "{not json");
  assert.throws(() => readUsers(state), { code: "USERS_UNREADABLE" });
});

test("setup link: no default password; the link creates the first administrator once, logs in, and expires after 24 h", async (t) => {
  const { app, auth, clock, authLog, service } = await securedApi(t);
  const link = auth.announce("http://127.0.0.1:8420/");
  assert.ok(link);
  assert.match(link, /^http:\/\/127\.0\.0\.1:8420\/setup#token=[A-Za-z0-9_-]{43}$/);
  assert.ok(
    authLog.lines.some((l) => l.msg.includes(link)),
    "the link is printed to the log",
  );
  const token = link.split("#token=")[1] as string;

  // No session: nothing but the public routes answer.
  assert.equal((await app.inject({ method: "GET", url: "/api/status" })).statusCode, 401);
  assert.equal((await login(app.inject.bind(app), "admin", "admin")).statusCode, 401, "no default login");

  const setup = (payload: object) => app.inject({ method: "POST", url: "/api/setup", payload });
  assert.equal((await setup({ token: "x".repeat(43), user: "admin", password: PASSWORD })).statusCode, 401);
  // A bad password is a field error, and leaves the link usable.
  const short = await setup({ token, user: "admin", password: "short" });
  assert.equal(short.statusCode, 400, short.body);
  assert.deepEqual(
    (short.json() as { error: { fields: { path: string[] }[] } }).error.fields.map((f) => f.path),
    [["password"]],
  );
  const badName = await setup({ token, user: "../admin", password: PASSWORD });
  assert.equal(badName.statusCode, 400, badName.body);
  assert.deepEqual(
    (badName.json() as { error: { fields: { path: string[] }[] } }).error.fields.map((f) => f.path),
    [["user"]],
  );
  const ok = await setup({ token, user: "admin", password: PASSWORD });
  assert.equal(ok.statusCode, 200, ok.body);
  const body = ok.json() as { user: string; csrf: string };
  assert.equal(body.user, "admin");
  assert.match(body.csrf, /^[A-Za-z0-9_-]{43}$/);
  const cookie = cookieOf(ok);
  const st = await app.inject({ method: "GET", url: "/api/status", headers: { cookie } });
  assert.equal(st.statusCode, 200, "setup logged in");
  assert.deepEqual([...readUsers(service.config.state).users.keys()], ["admin"]);

  // Works once.
  const again = await setup({ token, user: "eve", password: PASSWORD });
  assert.equal(again.statusCode, 401);
  assert.deepEqual([...readUsers(service.config.state).users.keys()], ["admin"]);
  assert.equal(auth.announce("http://127.0.0.1:8420/"), undefined, "no link while a user exists");

  // Expiry: a link unused for 24 h is dead (a fresh auth on a state with no users).
  const fresh = await securedApi(t);
  const t2 = (fresh.auth.announce("http://127.0.0.1:8420/") as string).split("#token=")[1] as string;
  fresh.clock.advance(24 * 3_600_000 + 1000);
  const late = await fresh.app.inject({
    method: "POST",
    url: "/api/setup",
    payload: { token: t2, user: "admin", password: PASSWORD },
  });
  assert.equal(late.statusCode, 401);
  assert.match(late.body, /expired/);
  assert.equal(readUsers(fresh.service.config.state).users.size, 0);
  void clock;
});

test("login, session, logout: cookie httpOnly SameSite=Strict Path=/ (Secure only under TLS); CSRF required on changes", async (t) => {
  const { app, service } = await securedApi(t);
  await addUser({ state: service.config.state, name: "admin", password: PASSWORD, clock: systemClock });
  const inject = app.inject.bind(app);
  const ok = await login(inject, "admin", PASSWORD);
  assert.equal(ok.statusCode, 200, ok.body);
  const set = String(ok.headers["set-cookie"]);
  assert.match(set, /^bsched_session=[A-Za-z0-9_-]{43};/);
  assert.match(set, /HttpOnly/);
  assert.match(set, /SameSite=Strict/);
  assert.match(set, /Path=\//);
  assert.doesNotMatch(set, /Secure/, "no Secure cookie over plain http (the browser would drop it)");
  const { csrf } = ok.json() as { csrf: string };
  const cookie = cookieOf(ok);

  const s = await inject({ method: "GET", url: "/api/session", headers: { cookie } });
  assert.equal(s.statusCode, 200);
  assert.deepEqual(s.json(), { user: "admin", csrf });
  assert.equal((await inject({ method: "GET", url: "/api/session" })).statusCode, 401);
  assert.equal(
    (await inject({ method: "GET", url: "/api/session", headers: { cookie: "bsched_session=forged" } }))
      .statusCode,
    401,
  );

  // A change without the token, or with another, is refused; with it, done.
  for (const headers of [
    { cookie },
    { cookie, "x-csrf-token": "wrong" },
    { cookie, "x-csrf-token": flip(csrf) },
  ]) {
    const r = await inject({ method: "POST", url: "/api/logout", headers });
    assert.equal(r.statusCode, 403, JSON.stringify(headers));
    assert.equal((r.json() as { error: { code: string } }).error.code, "CSRF");
  }
  const out = await inject({ method: "POST", url: "/api/logout", headers: { cookie, "x-csrf-token": csrf } });
  assert.equal(out.statusCode, 200);
  assert.match(String(out.headers["set-cookie"]), /bsched_session=;/);
  assert.equal(
    (await inject({ method: "GET", url: "/api/session", headers: { cookie } })).statusCode,
    401,
    "logged out",
  );

  // Under TLS the cookie is Secure.
  const tls = await securedApi(t, { secure: true });
  await addUser({ state: tls.service.config.state, name: "admin", password: PASSWORD, clock: systemClock });
  assert.match(
    String((await login(tls.app.inject.bind(tls.app), "admin", PASSWORD)).headers["set-cookie"]),
    /; Secure/,
  );
});

test("a wrong password and an unknown user get the same answer", async (t) => {
  const { app, service } = await securedApi(t);
  await addUser({ state: service.config.state, name: "admin", password: PASSWORD, clock: systemClock });
  const inject = app.inject.bind(app);
  const wrong = await login(inject, "admin", "not the password", "10.0.0.1");
  const unknown = await login(inject, "nobody", "not the password", "10.0.0.2");
  assert.equal(wrong.statusCode, 401);
  assert.equal(unknown.statusCode, 401);
  assert.equal(wrong.body, unknown.body);
  assert.deepEqual(Object.keys(wrong.headers).sort(), Object.keys(unknown.headers).sort());
  assert.doesNotMatch(wrong.body, /admin|nobody|not the password/);
});

test("login rate limit: 5 failures a minute per name and per address, then 429 with Retry-After, even for the right password", async (t) => {
  const { app, service, clock } = await securedApi(t);
  await addUser({ state: service.config.state, name: "admin", password: PASSWORD, clock: systemClock });
  const inject = app.inject.bind(app);
  for (let i = 0; i < 5; i++)
    assert.equal((await login(inject, "admin", `guess ${i}`, "10.0.0.1")).statusCode, 401);
  const limited = await login(inject, "admin", PASSWORD, "10.0.0.9");
  assert.equal(limited.statusCode, 429, "per name, from another address too");
  assert.equal((limited.json() as { error: { code: string } }).error.code, "RATE_LIMITED");
  const wait = Number(limited.headers["retry-after"]);
  assert.ok(wait >= 1 && wait <= 60, String(wait));
  // The same address trying other names is limited too (per address).
  assert.equal((await login(inject, "someone", "guess", "10.0.0.1")).statusCode, 429);
  // Another name from another address is not.
  assert.equal((await login(inject, "other", "guess", "10.0.0.2")).statusCode, 401);
  clock.advance(61_000);
  const ok = await login(inject, "admin", PASSWORD, "10.0.0.1");
  assert.equal(ok.statusCode, 200, "after the minute, the right password works");
});

test("a new password or a removed user ends their sessions; an idle session expires after 12 h", async (t) => {
  const { app, service, clock } = await securedApi(t);
  const state = service.config.state;
  await addUser({ state, name: "admin", password: PASSWORD, clock: systemClock });
  await addUser({ state, name: "bob", password: PASSWORD, clock: systemClock });
  const inject = app.inject.bind(app);
  const get = (cookie: string) => inject({ method: "GET", url: "/api/session", headers: { cookie } });
  const a = cookieOf(await login(inject, "admin", PASSWORD));
  const b = cookieOf(await login(inject, "bob", PASSWORD));
  assert.equal((await get(a)).statusCode, 200);
  await setPassword({
    state,
    name: "admin",
    password: `${PASSWORD} 2`,
    clock: { now: () => new Date(Date.now() + 5) },
  });
  assert.equal((await get(a)).statusCode, 401, "a new password logs the user out");
  await removeUser({ state, name: "bob", clock: systemClock });
  assert.equal((await get(b)).statusCode, 401, "a removed user is logged out");
  const c = cookieOf(await login(inject, "admin", `${PASSWORD} 2`));
  clock.advance(11 * 3_600_000);
  assert.equal((await get(c)).statusCode, 200, "used within 12 h: kept (and its idle time restarts)");
  clock.advance(12 * 3_600_000 + 1000);
  assert.equal((await get(c)).statusCode, 401, "idle 12 h: ended");
});

/** Random values stored as the service login's password and destinations' secrets, for the sweep's grep. */
const SECRETS = {
  service: `svc-${Math.random().toString(36).slice(2)}-pw`,
  offsite: `s3-${Math.random().toString(36).slice(2)}-key`,
  vault: `sftp-${Math.random().toString(36).slice(2)}-pw`,
};

test("THE AUTHENTICATION SWEEP: every route of /api/openapi.json needs a session (401), every change the CSRF token (403); secrets never returned", async (t) => {
  const { app, service, server } = await securedApi(t);
  const state = service.config.state;
  // The service login and two destinations with secrets, as the settings screens would show them.
  const { setSecret } = await import("../src/ops/secrets.ts");
  for (const [name, value] of Object.entries(SECRETS))
    await setSecret({ state, name, value, clock: systemClock });
  const text = await fs.readFile(server.config, "utf8");
  await fs.writeFile(
    server.config,
    text
      .replace(
        "server:\n",
        "server:\n  serviceLogin: { domain: CORP, user: svc-backup, password: secret:service }\n",
      )
      .replace(
        "sets:\n",
        `destinations:
  offsite: { type: s3, endpoint: "http://127.0.0.1:9", bucket: b, accessKeyId: AKTEST, secretAccessKey: secret:offsite }
  vault: { type: sftp, host: 127.0.0.1, port: 9, user: backup, password: secret:vault, hostKey: "SHA256:${"A".repeat(43)}", path: /srv }
sets:
`,
      ),
  );
  assert.equal(service.reload("test"), true, "the config with secrets loads");
  await addUser({ state, name: "admin", password: PASSWORD, clock: systemClock });
  const inject = app.inject.bind(app);
  const ok = await login(inject, "admin", PASSWORD);
  const cookie = cookieOf(ok);
  const { csrf } = ok.json() as { csrf: string };

  // The document itself needs a session.
  assert.equal((await inject({ method: "GET", url: "/api/openapi.json" })).statusCode, 401);
  const docRes = await inject({ method: "GET", url: "/api/openapi.json", headers: { cookie } });
  assert.equal(docRes.statusCode, 200);
  const doc = docRes.json() as {
    paths: Record<string, Record<string, { responses?: Record<string, { content?: object }> }>>;
  };

  const PUBLIC = new Set(["POST /api/login", "POST /api/setup"]);
  const CHANGES = new Set(["post", "put", "patch", "delete"]);
  const responses: Record<string, string> = {};
  const seen: string[] = [];
  for (const [p, ops] of Object.entries(doc.paths)) {
    // Path parameters: the fixture's set for {set} (so its answers are real ones), dummies else.
    const url = p.replace(/\{set\}/g, "data").replace(/\{[^}]+\}/g, "dummy");
    for (const [method, op] of Object.entries(ops)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const route = `${method.toUpperCase()} ${p}`;
      seen.push(route);
      const m = method.toUpperCase() as "GET";
      const payload = CHANGES.has(method) ? {} : undefined;
      const anon = await inject({ method: m, url, ...(payload ? { payload } : {}) });
      if (PUBLIC.has(route)) {
        assert.notEqual(anon.statusCode, 401, `${route} is public`);
        continue;
      }
      assert.equal(anon.statusCode, 401, `${route} without a session: ${anon.statusCode} ${anon.body}`);
      assert.equal((anon.json() as { error: { code: string } }).error.code, "UNAUTHENTICATED", route);
      assert.equal(
        (
          await inject({
            method: m,
            url,
            headers: { cookie: "bsched_session=forged" },
            ...(payload ? { payload } : {}),
          })
        ).statusCode,
        401,
        `${route} with a forged session`,
      );
      if (CHANGES.has(method)) {
        for (const token of [undefined, "wrong", flip(csrf)]) {
          const r = await inject({
            method: m,
            url,
            payload: {},
            headers: { cookie, ...(token === undefined ? {} : { "x-csrf-token": token }) },
          });
          assert.equal(
            r.statusCode,
            403,
            `${route} with a session and CSRF token ${token ?? "(none)"}: ${r.statusCode}`,
          );
        }
      } else {
        const stream = Object.values(op.responses ?? {}).some(
          (r) => r.content && "text/event-stream" in r.content,
        );
        if (stream || p === "/api/events") continue;
        const r = await inject({ method: m, url, headers: { cookie } });
        assert.notEqual(r.statusCode, 401, `${route} with a session`);
        responses[route] = r.body;
      }
    }
  }
  assert.ok(seen.includes("GET /api/status") && seen.includes("GET /api/session"), seen.join(", "));
  for (const r of PUBLIC) assert.ok(seen.includes(r), `${r} is documented`);

  // The SSE route, whether or not it is there yet, and any other path under /api/.
  for (const url of [
    "/api/events",
    "/api/nothing-here",
    "/api/sets/data/backups",
    "/API/status",
    "/%61pi/status",
    "//api/status",
  ]) {
    const r = await inject({ method: "GET", url });
    assert.ok(r.statusCode === 401 || r.statusCode === 404, `${url}: ${r.statusCode}`);
    if (r.statusCode === 404) assert.doesNotMatch(r.body, /"sets"|"daemon"/, `${url} reveals nothing`);
  }
  assert.equal((await inject({ method: "GET", url: "/api/events" })).statusCode, 401);
  // The secrets: in no GET answer, nor in the config as the API sees it.
  assert.ok(Object.keys(responses).length >= 2);
  for (const [where, body] of Object.entries(responses))
    for (const [label, value] of Object.entries(SECRETS))
      assert.ok(!body.includes(value), `secret ${label} in ${where}`);
});

test("TLS: the window over HTTPS with server.web.tls; a port in use is LOCKED naming the address", async (t) => {
  const { service, auth, log } = await securedApi(t, { secure: true });
  const dir = await tempDir("bsched-tls-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      { stdio: "ignore" },
    );
  } catch {
    return t.skip("openssl is missing (Debian package openssl)");
  }
  const web = { enabled: true, host: "127.0.0.1", port: 0, tls: { cert, key } };
  const server = await startWeb({ service, clock: systemClock, log, auth, web, webRoot: dir });
  t.after(() => server.close());
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
  const ca = await fs.readFile(cert);
  const status = await new Promise<number>((resolve, reject) => {
    https
      .get(new URL("/api/status", server.url), { ca }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on("error", reject);
  });
  assert.equal(status, 401, "served over TLS, and locked");

  await assert.rejects(
    startWeb({
      service,
      clock: systemClock,
      log,
      auth,
      web: { ...web, tls: { cert, key: path.join(dir, "missing.pem") } },
    }),
    (e: Error & { code: string }) => {
      assert.equal(e.code, "CONFIG_INVALID");
      assert.match(e.message, /server\.web\.tls\.key: cannot read .*missing\.pem/);
      return true;
    },
  );
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
  t.after(() => new Promise<void>((r) => busy.close(() => r())));
  const port = (busy.address() as net.AddressInfo).port;
  await assert.rejects(
    startWeb({ service, clock: systemClock, log, auth, web: { enabled: true, host: "127.0.0.1", port } }),
    (e: Error & { code: string }) => {
      assert.equal(e.code, "LOCKED");
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port} is in use`));
      return true;
    },
  );
});
