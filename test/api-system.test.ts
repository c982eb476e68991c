import assert from "node:assert/strict";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { ApiError } from "../src/api/errors.ts";
import { testDestination } from "../src/ops/settings.ts";
import { resolveSecret } from "../src/secrets/secrets.ts";
import type { Settings } from "./helpers/api.ts";
import { type ApiFixture, apiFixture } from "./helpers/api.ts";
import { freePort } from "./helpers/servers/need.ts";
import { type SshdServer, sshdMissing, startSshd } from "./helpers/servers/sshd.ts";

/*
 * The system parameters and destinations of the window (docs/design.md "Settings and system
 * parameters"): passwords go to the secret store and never come back; the test connection runs
 * against a real sshd on loopback.
 */

async function settings(f: ApiFixture): Promise<{ body: string; s: Settings }> {
  const r = await f.app.inject({ method: "GET", url: "/api/settings" });
  assert.equal(r.statusCode, 200, r.body);
  return { body: r.body, s: r.json() as Settings };
}

/** Every file under `dir` whose bytes hold `secret` (there must be none: the store is encrypted). */
async function filesHolding(dir: string, secret: string): Promise<string[]> {
  const found: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    if ((await fs.readFile(file)).includes(secret)) found.push(file);
  }
  return found;
}

const yamlOf = async (f: ApiFixture) =>
  parseYaml(await fs.readFile(f.server.config, "utf8")) as {
    server: Record<string, unknown>;
    destinations?: Record<string, Record<string, unknown>>;
    sets: Record<string, Record<string, unknown>>;
  };

const FAKE_HOST_KEY = `SHA256:${"A".repeat(43)}`;

test("the service login: its password goes to the secret store, the config references it, no GET, file or log shows it", async (t) => {
  const f = await apiFixture(t);
  const password = "Sup3r-secret-service-pw";
  const { s } = await settings(f);
  assert.equal(s.system.serviceLogin, null);

  const put = await f.app.inject({
    method: "PUT",
    url: "/api/settings/system",
    payload: { hash: s.hash, serviceLogin: { domain: "CORP", user: "svc-backup", password } },
  });
  assert.equal(put.statusCode, 200, put.body);
  assert.ok(!put.body.includes(password));
  const doc = await yamlOf(f);
  assert.deepEqual(doc.server.serviceLogin, {
    domain: "CORP",
    user: "svc-backup",
    password: "secret:service-login",
  });
  const state = f.service.config.state;
  assert.equal(resolveSecret("secret:service-login", state, "server.serviceLogin.password"), password);
  assert.deepEqual(await filesHolding(f.server.dir, password), [], "in no file, the store included");

  const { body, s: s2 } = await settings(f);
  assert.ok(!body.includes(password), "never in a GET");
  assert.deepEqual(s2.system.serviceLogin, { domain: "CORP", user: "svc-backup", passwordSet: true });
  const logged = JSON.stringify(f.log.lines);
  assert.ok(!logged.includes(password), "never in the log");

  // A new user name without a password: the stored password stays.
  const rename = await f.app.inject({
    method: "PUT",
    url: "/api/settings/system",
    payload: { hash: s2.hash, serviceLogin: { domain: null, user: "svc-other", password: "" } },
  });
  assert.equal(rename.statusCode, 200, rename.body);
  assert.deepEqual((await yamlOf(f)).server.serviceLogin, {
    user: "svc-other",
    password: "secret:service-login",
  });
  assert.equal(resolveSecret("secret:service-login", state, "server.serviceLogin.password"), password);
  assert.equal(f.service.config.destinations.size, 0);
});

test("a new service login needs a password; a bad time zone or concurrency is a field error and nothing is written", async (t) => {
  const f = await apiFixture(t);
  const { s } = await settings(f);
  const text = await fs.readFile(f.server.config, "utf8");
  const cases: [Record<string, unknown>, string[]][] = [
    [{ serviceLogin: { user: "svc" } }, ["server", "serviceLogin", "password"]],
    [{ timezone: "Mars/Olympus_Mons" }, ["server", "timezone"]],
    [{ concurrency: 40 }, ["server", "concurrency"]],
    [{ serviceLogin: { user: "", password: "pw-not-stored" } }, ["server", "serviceLogin", "user"]],
  ];
  for (const [change, field] of cases) {
    const r = await f.app.inject({
      method: "PUT",
      url: "/api/settings/system",
      payload: { hash: s.hash, ...change },
    });
    assert.equal(r.statusCode, 400, r.body);
    assert.deepEqual(
      (r.json() as ApiError).error.fields?.map((x) => x.path),
      [field],
      r.body,
    );
  }
  assert.equal(await fs.readFile(f.server.config, "utf8"), text);
  await assert.rejects(
    fs.stat(path.join(f.service.config.state, "secrets.json")),
    "a refused change stores no secret",
  );

  const ok = await f.app.inject({
    method: "PUT",
    url: "/api/settings/system",
    payload: { hash: s.hash, timezone: "America/New_York", concurrency: 2 },
  });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal(f.service.config.timezone, "America/New_York", "the daemon reloaded");
  assert.equal(f.service.config.concurrency, 2);
  const back = await f.app.inject({
    method: "PUT",
    url: "/api/settings/system",
    payload: { hash: (ok.json() as { hash: string }).hash, timezone: null },
  });
  assert.equal(back.statusCode, 200, back.body);
  assert.equal((await yamlOf(f)).server.timezone, undefined);
});

test("destinations: a plain secret is stored, the config references it, GET masks it; a destination a set uses is not removed", async (t) => {
  const f = await apiFixture(t);
  const password = "vault-pw-never-shown";
  const vault = {
    type: "sftp",
    host: "vault.example",
    user: "backup",
    password,
    hostKey: FAKE_HOST_KEY,
    path: "/srv/backups",
  };
  let { s } = await settings(f);
  const add = await f.app.inject({
    method: "PUT",
    url: "/api/settings/destinations/vault",
    payload: { hash: s.hash, destination: vault },
  });
  assert.equal(add.statusCode, 200, add.body);
  assert.equal((await yamlOf(f)).destinations?.vault?.password, "secret:vault");
  assert.equal(
    resolveSecret("secret:vault", f.service.config.state, "destinations.vault.password"),
    password,
  );
  assert.deepEqual(await filesHolding(f.server.dir, password), []);
  assert.ok(f.service.config.destinations.has("vault"), "the daemon reloaded");

  const got = await settings(f);
  s = got.s;
  assert.ok(!got.body.includes(password));
  const shown = (s.system.destinations as Record<string, Record<string, unknown>>).vault;
  assert.deepEqual(shown?.password, { secret: "vault", set: true });
  assert.equal(shown?.port, 22);

  // Sent back with the mask and another port: only the port changes.
  const edit = await f.app.inject({
    method: "PUT",
    url: "/api/settings/destinations/vault",
    payload: { hash: s.hash, destination: { ...shown, port: 2222 } },
  });
  assert.equal(edit.statusCode, 200, edit.body);
  assert.deepEqual((await yamlOf(f)).destinations?.vault, { ...vault, password: "secret:vault", port: 2222 });

  // The set copies to it: removing it is refused, naming the set.
  ({ s } = await settings(f));
  const copy = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/data",
    payload: { hash: s.hash, settings: { ...s.sets.data, copies: ["vault"] } },
  });
  assert.equal(copy.statusCode, 200, copy.body);
  ({ s } = await settings(f));
  const refused = await f.app.inject({
    method: "DELETE",
    url: `/api/settings/destinations/vault?hash=${s.hash}`,
  });
  assert.equal(refused.statusCode, 400, refused.body);
  const e = (refused.json() as ApiError).error;
  assert.match(e.message, /destination vault is used by set data \(sets\.data\.copies\)/);
  assert.deepEqual(
    e.fields?.map((x) => x.path),
    [["sets", "data", "copies", 0]],
  );
  assert.ok((await yamlOf(f)).destinations?.vault);

  const uncopy = await f.app.inject({
    method: "PUT",
    url: "/api/settings/sets/data",
    payload: { hash: s.hash, settings: { ...s.sets.data, copies: [] } },
  });
  assert.equal(uncopy.statusCode, 200, uncopy.body);
  const gone = await f.app.inject({
    method: "DELETE",
    url: "/api/settings/destinations/vault",
    payload: { hash: (uncopy.json() as { hash: string }).hash },
  });
  assert.equal(gone.statusCode, 200, gone.body);
  assert.equal((await yamlOf(f)).destinations?.vault, undefined);
  assert.equal(f.service.config.destinations.has("vault"), false);
  const unknown = await f.app.inject({
    method: "DELETE",
    url: `/api/settings/destinations/vault?hash=${(gone.json() as { hash: string }).hash}`,
  });
  assert.equal(unknown.statusCode, 404, unknown.body);
});

test("a bad destination entry is a field error under its name; nothing is written or stored", async (t) => {
  const f = await apiFixture(t);
  const { s } = await settings(f);
  const text = await fs.readFile(f.server.config, "utf8");
  const r = await f.app.inject({
    method: "PUT",
    url: "/api/settings/destinations/vault",
    payload: {
      hash: s.hash,
      destination: {
        type: "sftp",
        host: "h",
        user: "u",
        password: "pw-refused",
        hostKey: "nope",
        path: "/x",
      },
    },
  });
  assert.equal(r.statusCode, 400, r.body);
  assert.deepEqual(
    (r.json() as ApiError).error.fields?.map((x) => x.path),
    [["destinations", "vault", "hostKey"]],
  );
  assert.ok(!r.body.includes("pw-refused"));
  assert.equal(await fs.readFile(f.server.config, "utf8"), text);
  await assert.rejects(fs.stat(path.join(f.service.config.state, "secrets.json")));
});

const missing = sshdMissing();
if (missing) {
  test("test connection against a real sshd", { skip: missing }, () => undefined);
} else {
  let server: SshdServer;
  before(async () => {
    server = await startSshd({ password: true });
  });
  after(async () => {
    await server?.close();
  });

  const entry = (over: Record<string, unknown> = {}) => ({
    type: "sftp",
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    hostKey: server.hostKeyFingerprint,
    path: path.join(server.dir, "tested"),
    ...over,
  });

  test("test connection: ok against a real sshd; AUTH_FAILED with a wrong password; HOST_KEY_MISMATCH; UNREACHABLE on a closed port", async (t) => {
    const f = await apiFixture(t);
    const test1 = async (body: Record<string, unknown>) => {
      const r = await f.app.inject({ method: "POST", url: "/api/destinations/test", payload: body });
      assert.equal(r.statusCode, 200, r.body);
      return {
        body: r.body,
        json: r.json() as { ok: boolean; where: string; error?: { code: string; message: string } },
      };
    };
    const good = await test1({ name: "vault", destination: entry() });
    assert.deepEqual(good.json, {
      ok: true,
      where: `sftp://${server.user}@127.0.0.1:${server.port}${server.dir}/tested`,
      backups: 0,
    });

    const wrong = `${server.password}-wrong`;
    const bad = await test1({ name: "vault", destination: entry({ password: wrong }) });
    assert.equal(bad.json.ok, false);
    assert.equal(bad.json.error?.code, "AUTH_FAILED", bad.body);
    assert.match(bad.json.error?.message ?? "", /destination vault/);
    assert.ok(
      !bad.body.includes(wrong) && !bad.body.includes(server.password as string),
      "never the password",
    );

    const otherKey = await test1({ name: "vault", destination: entry({ hostKey: FAKE_HOST_KEY }) });
    assert.equal(otherKey.json.error?.code, "HOST_KEY_MISMATCH", otherKey.body);
    assert.ok(otherKey.json.error?.message.includes(server.hostKeyFingerprint), otherKey.body);

    const port = await freePort();
    const down = await test1({ destination: entry({ port }) });
    assert.equal(down.json.error?.code, "UNREACHABLE", down.body);
    assert.ok(down.json.error?.message.includes(`127.0.0.1:${port}`), down.body);

    // Nothing of an unsaved test is kept: no config change, no secret.
    await assert.rejects(fs.stat(path.join(f.service.config.state, "secrets.json")));
    assert.equal((await yamlOf(f)).destinations, undefined);
    assert.deepEqual(await filesHolding(f.server.dir, server.password as string), []);

    // Saved (its password in the store), then tested by name.
    const { s } = await settings(f);
    const save = await f.app.inject({
      method: "PUT",
      url: "/api/settings/destinations/vault",
      payload: { hash: s.hash, destination: entry() },
    });
    assert.equal(save.statusCode, 200, save.body);
    assert.deepEqual((await test1({ name: "vault" })).json.ok, true);
    // Edited in the window with the mask and tested before saving: the stored password is used.
    const { s: s2 } = await settings(f);
    const shown = (s2.system.destinations as Record<string, unknown>).vault;
    assert.equal((await test1({ name: "vault", destination: shown })).json.ok, true);
    const nope = await f.app.inject({
      method: "POST",
      url: "/api/destinations/test",
      payload: { name: "nas" },
    });
    assert.equal(nope.statusCode, 404, nope.body);
  });
}

test("test connection: a server that accepts and never answers is UNREACHABLE once the timeout passes, and the answer comes", async (t) => {
  const f = await apiFixture(t);
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });
  const port = (silent.address() as net.AddressInfo).port;
  const r = await testDestination({
    file: f.server.config,
    name: "mute",
    destination: {
      type: "sftp",
      host: "127.0.0.1",
      port,
      user: "u",
      password: "pw",
      hostKey: FAKE_HOST_KEY,
      path: "/x",
    },
    timeoutMs: 1000,
  });
  assert.equal(r.ok, false);
  assert.equal(r.ok === false && r.error.code, "UNREACHABLE");
  assert.match(
    r.ok === false ? r.error.message : "",
    /destination mute \(sftp:\/\/u@127\.0\.0\.1:\d+\/x\) did not answer within 1 s/,
  );
});

test("a secret written plain in the file (before secrets existed) is masked too: {secret: null, set: true}", async (t) => {
  const f = await apiFixture(t);
  const plain = "plain-pw-in-the-file";
  const text = `server:
  root: srv
  timezone: UTC
  serviceLogin: { user: svc, password: ${plain} }
destinations:
  offsite: { type: s3, bucket: b, accessKeyId: AKIDTEST, secretAccessKey: ${plain}-s3 }
  nas: { type: smb, share: //fs/backups, login: { user: u, password: ${plain}-smb } }
sets:
  data:
    letter: D
    source: Data
`;
  await fs.writeFile(f.server.config, text);
  assert.ok(f.service.reload("test"));
  const { body, s } = await settings(f);
  assert.ok(!body.includes(plain), "no plain secret in the GET");
  assert.deepEqual(s.system.serviceLogin, { domain: null, user: "svc", passwordSet: true });
  const d = s.system.destinations as Record<string, Record<string, unknown>>;
  assert.deepEqual(d.offsite?.secretAccessKey, { secret: null, set: true });
  assert.equal(d.offsite?.accessKeyId, "AKIDTEST", "an identifier is shown");
  assert.deepEqual(d.nas?.login, { user: "u", password: { secret: null, set: true } });
  // Sent back as received: the plain values stay as they are (nothing to write).
  const r = await f.app.inject({
    method: "PUT",
    url: "/api/settings/destinations/nas",
    payload: { hash: s.hash, destination: d.nas },
  });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal((r.json() as { changed: boolean }).changed, false);
  assert.equal(await fs.readFile(f.server.config, "utf8"), text);
});
