import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { apiFixture } from "./helpers/api.ts";
import { type SmbServer, smbdMissing, startSmbd } from "./helpers/servers/smbd.ts";

/*
 * The seed's service login in use: set through the system parameters (its password to the
 * secret store), then an SMB destination with `login: service` tested through the window's
 * "test connection", against a real smbd on loopback.
 */

/**
 * Every process whose command line or environment holds `secret`, sampled every few milliseconds
 * until `stop` (smbclient runs for the test connection: its argv and environment are checked).
 */
function watchProcesses(secret: string): { stop(): string[] } {
  const found = new Set<string>();
  const look = () => {
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
      for (const what of ["cmdline", "environ"]) {
        try {
          if (readFileSync(`/proc/${pid}/${what}`).includes(secret)) found.add(`${pid} ${what}`);
        } catch {}
      }
    }
  };
  const timer = setInterval(look, 5);
  return {
    stop() {
      clearInterval(timer);
      return [...found];
    },
  };
}

const missing = smbdMissing();
if (missing) {
  test("the service login and an SMB destination's test connection", { skip: missing }, () => undefined);
} else {
  let server: SmbServer;
  before(async () => {
    server = await startSmbd();
  });
  after(async () => {
    await server?.cleanup();
  });

  test("an SMB destination logging in as the service login: ok with its password, AUTH_FAILED with another, never shown", async (t) => {
    const f = await apiFixture(t);
    const put = async (url: string, payload: Record<string, unknown>) => {
      const s = (await f.app.inject({ method: "GET", url: "/api/settings" })).json() as { hash: string };
      const r = await f.app.inject({ method: "PUT", url, payload: { hash: s.hash, ...payload } });
      assert.equal(r.statusCode, 200, r.body);
    };
    const testNas = async () => {
      const r = await f.app.inject({
        method: "POST",
        url: "/api/destinations/test",
        payload: { name: "nas" },
      });
      assert.equal(r.statusCode, 200, r.body);
      return { body: r.body, json: r.json() as { ok: boolean; error?: { code: string; message: string } } };
    };
    await put("/api/settings/system", {
      serviceLogin: { domain: server.domain, user: server.user, password: server.password },
    });
    await put("/api/settings/destinations/nas", {
      destination: { type: "smb", share: server.share, port: server.port, path: "site1", login: "service" },
    });
    const watch = watchProcesses(server.password);
    const ok = await testNas();
    assert.deepEqual(watch.stop(), [], "the password in no process's argv or environment");
    assert.equal(ok.json.ok, true, ok.body);

    const wrong = `${server.password}-wrong`;
    await put("/api/settings/system", {
      serviceLogin: { domain: server.domain, user: server.user, password: wrong },
    });
    const bad = await testNas();
    assert.equal(bad.json.error?.code, "AUTH_FAILED", bad.body);
    assert.ok(!bad.body.includes(wrong) && !bad.body.includes(server.password), "never the password");
    const shown = (await f.app.inject({ method: "GET", url: "/api/settings" })).body;
    assert.ok(!shown.includes(wrong) && !shown.includes(server.password));
  });
}
