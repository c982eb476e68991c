import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { sessionAuth } from "../src/api/auth/session-auth.ts";
import { buildApi } from "../src/api/server.ts";
import { DaemonService } from "../src/daemon/service.ts";
import { systemClock } from "../src/platform/clock.ts";
import { recordingLog } from "./helpers/api.ts";
import { runCli, tempDir } from "./helpers/cli.ts";
import { waitFor } from "./helpers/live.ts";
import { windowDaemon } from "./helpers/window-daemon.ts";

/*
 * /metrics and /healthz (issue 14 item 3): a real daemon process scraped over loopback during and
 * after real backups; the access rules (token or loopback only) through the real session guard.
 */

/** One sample's value from Prometheus's text format, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** This machine's first non-loopback IPv4 address (the test's "other machine"), if it has one. */
function outsideAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return undefined;
}

test("a real daemon's /metrics: values move during and after a run, failures count, /healthz answers; refused from another address without a token", async (t) => {
  const dir = await tempDir("bsched-metrics-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const data = path.join(dir, "srv", "Data");
  await fs.mkdir(data, { recursive: true });
  await fs.writeFile(path.join(data, "a.db"), "x".repeat(1000));
  await fs.writeFile(path.join(data, "b.db"), "y".repeat(234));
  const gate = path.join(dir, "gate");
  const outside = outsideAddress();
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: UTC
  web: { listen: "${outside ? "0.0.0.0" : "127.0.0.1"}:0" }
sets:
  data:
    letter: D
    source: Data
    frequency: daily
    time: "04:00"
    hooks: { before: "while [ ! -e '${gate}' ] && [ -d '${dir}' ]; do sleep 0.05; done", timeout: 600 }
`,
  );
  const d = windowDaemon(config, dir);
  t.after(() => {
    if (d.child.exitCode === null) d.child.kill("SIGKILL");
  });
  const at = await d.waitFor((m) => m.startsWith("metrics at "), "metrics at URL");
  const url = /^metrics at (\S+)/.exec(at)?.[1] as string;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const scrape = async () => {
    const r = await fetch(url);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain/);
    return r.text();
  };

  const health = await fetch(new URL("/healthz", url));
  assert.equal(health.status, 200);
  assert.equal(await health.text(), "ok\n", "no data beyond ok");

  const before = await scrape();
  assert.equal(sample(before, "bsched_scheduler_alive"), 1);
  assert.equal(sample(before, "bsched_set_running", { set: "data" }), 0);
  assert.equal(sample(before, "bsched_set_failures_total", { set: "data" }), 0);
  assert.equal(sample(before, "bsched_set_period_seconds", { set: "data" }), 86_400);
  const next = sample(before, "bsched_set_next_run_timestamp_seconds", { set: "data" }) as number;
  assert.ok(next > Date.now() / 1000 && next <= Date.now() / 1000 + 86_400, String(next));
  assert.equal(
    sample(before, "bsched_last_success_timestamp_seconds", { set: "data", destination: "folder" }),
    undefined,
  );
  assert.ok((sample(before, "bsched_backup_folder_free_bytes", { set: "data" }) ?? 0) > 0);

  // During a run (held by its before hook): the set shows running.
  const run = runCli(["backup", "data", "--json", "--config", config], { cwd: dir });
  let during = "";
  await waitFor(
    "bsched_set_running 1 during the backup",
    async () => {
      during = await scrape();
      return sample(during, "bsched_set_running", { set: "data" }) === 1;
    },
    120_000,
  );
  assert.equal(sample(during, "bsched_backups", { set: "data", destination: "folder" }), undefined);
  await fs.writeFile(gate, "");
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  const name = (JSON.parse(r.stdout) as { name: string }).name;

  const after = await scrape();
  assert.equal(sample(after, "bsched_set_running", { set: "data" }), 0);
  const folder = { set: "data", destination: "folder" };
  assert.equal(sample(after, "bsched_backups", folder), 1);
  assert.equal(sample(after, "bsched_last_backup_files", folder), 2);
  assert.equal(sample(after, "bsched_last_backup_bytes", folder), 1234);
  const success = sample(after, "bsched_last_success_timestamp_seconds", folder) as number;
  assert.ok(Math.abs(success - Date.now() / 1000) < 600, `${success} is about now (${name})`);
  assert.ok((sample(after, "bsched_last_backup_duration_seconds", folder) ?? -1) >= 0);
  assert.equal(sample(after, "bsched_set_last_run_success", { set: "data" }), 1);
  assert.equal(sample(after, "bsched_next_full_estimate_bytes", { set: "data" }) !== undefined, true);
  assert.equal(sample(after, "bsched_backup_folder_low", { set: "data" }), 0);

  // The dashboard and the alert rules in docs/ use only metrics that exist.
  const exported = new Set([...after.matchAll(/^# HELP (\w+) /gm)].map((m) => m[1]));
  for (const f of ["grafana-dashboard.json", "prometheus-alerts.yml"]) {
    const text = await fs.readFile(path.join(import.meta.dirname, "..", "docs", f), "utf8");
    const used = new Set([...text.matchAll(/\bbsched_[a-z_]+/g)].map((m) => m[0]));
    assert.ok(used.size >= 4, f);
    for (const name of used)
      assert.ok(exported.has(name), `${f} uses ${name}, which /metrics does not export`);
  }

  // A failed run: the counter moves, the last success does not.
  await fs.rm(data, { recursive: true });
  const failed = await runCli(["backup", "data", "--config", config], { cwd: dir });
  assert.equal(failed.code, 1, failed.stderr);
  const later = await scrape();
  assert.equal(sample(later, "bsched_set_failures_total", { set: "data" }), 1);
  assert.equal(sample(later, "bsched_set_last_run_success", { set: "data" }), 0);
  assert.equal(sample(later, "bsched_last_success_timestamp_seconds", folder), success);

  // From another address of this machine (not loopback) and no token configured: refused.
  if (outside) {
    const port = new URL(url).port;
    const far = await fetch(`http://${outside}:${port}/metrics`);
    assert.equal(far.status, 403);
    const body = (await far.json()) as { error: { code: string; hint: string } };
    assert.equal(body.error.code, "FORBIDDEN");
    assert.match(body.error.hint, /server\.metrics\.token/);
    assert.equal((await fetch(`http://${outside}:${port}/healthz`)).status, 200, "/healthz: no auth");
  } else
    t.diagnostic("no non-loopback address here: the remote refusal is tested with an injected address below");

  d.child.kill("SIGTERM");
  assert.equal(await d.closed, 0, d.stderr());
});

test("docs/prometheus-alerts.yml is a rules file (and passes promtool check rules when promtool is installed)", async (t) => {
  const file = path.join(import.meta.dirname, "..", "docs", "prometheus-alerts.yml");
  const doc = parseYaml(await fs.readFile(file, "utf8")) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  const alerts = doc.groups.flatMap((g) => g.rules.map((r) => r.alert));
  for (const a of ["BschedNoSuccessfulBackup", "BschedDrillFailed", "BschedDiskNearlyFull"])
    assert.ok(alerts.includes(a), a);
  const r = spawnSync(
    "promtool",
    ["check", "rules", path.join(import.meta.dirname, "..", "docs", "prometheus-alerts.yml")],
    {
      encoding: "utf8",
    },
  );
  if (r.error) {
    t.skip(
      "promtool is not installed (Debian package prometheus): the rules' metric names are checked above",
    );
    return;
  }
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test("/metrics access: loopback only without a token; with server.metrics.token, its bearer from anywhere and nothing else; /healthz 503 once stopped", async (t) => {
  const dir = await tempDir("bsched-metrics-auth-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  const config = path.join(dir, "bsched.yaml");
  const yaml = (extra: string) => `server:
  root: srv
  timezone: UTC
  web: { enabled: false }
${extra}sets:
  data:
    letter: D
    source: Data
    frequency: now
`;
  await fs.writeFile(config, yaml(""));
  const start = async () => {
    const log = recordingLog();
    const service = new DaemonService({
      configFile: config,
      clock: systemClock,
      log,
      watchMs: 0,
      control: false,
    });
    await service.start();
    const auth = sessionAuth({ state: service.config.state, clock: systemClock, log, secure: false });
    const app = await buildApi({ service, clock: systemClock, log, auth });
    return { service, app, log };
  };
  const get = (app: Awaited<ReturnType<typeof start>>["app"], remoteAddress: string, headers = {}) =>
    app.inject({ method: "GET", url: "/metrics", remoteAddress, headers });

  {
    const { service, app } = await start();
    assert.equal((await get(app, "127.0.0.1")).statusCode, 200);
    assert.equal((await get(app, "::1")).statusCode, 200);
    assert.equal((await get(app, "::ffff:127.0.0.1")).statusCode, 200);
    const far = await get(app, "192.0.2.10");
    assert.equal(far.statusCode, 403);
    assert.equal(far.json().error.code, "FORBIDDEN");
    assert.equal((await get(app, "192.0.2.10", { authorization: "Bearer anything" })).statusCode, 403);
    const h = await app.inject({ method: "GET", url: "/healthz", remoteAddress: "192.0.2.10" });
    assert.equal(h.statusCode, 200);
    assert.equal(h.body, "ok\n");
    await service.stop({ graceMs: 10_000 });
    const down = await app.inject({ method: "GET", url: "/healthz" });
    assert.equal(down.statusCode, 503, "the schedule loop has stopped");
    await app.close();
  }

  // With a token: set as a secret, sent as a bearer; never in the config file.
  const token = `metrics-${Math.random().toString(36).slice(2)}-token`;
  await fs.writeFile(config, yaml("  metrics: { token: secret:metrics }\n"));
  const set = await runCli(["secret", "set", "metrics", "--stdin", "--config", config], {
    cwd: dir,
    input: token,
  });
  assert.equal(set.code, 0, set.stderr);
  const { service, app, log } = await start();
  t.after(async () => {
    await app.close();
    await service.stop({ graceMs: 10_000 }).catch(() => undefined);
  });
  const ok = await get(app, "192.0.2.10", { authorization: `Bearer ${token}` });
  assert.equal(ok.statusCode, 200);
  assert.match(ok.body, /bsched_set_failures_total\{set="data"\} 0/);
  const none = await get(app, "192.0.2.10");
  assert.equal(none.statusCode, 401);
  assert.equal(none.headers["www-authenticate"], 'Bearer realm="bsched metrics"');
  assert.equal((await get(app, "192.0.2.10", { authorization: "Bearer wrong" })).statusCode, 401);
  assert.equal((await get(app, "127.0.0.1")).statusCode, 401, "with a token, loopback needs it too");
  assert.equal((await get(app, "127.0.0.1", { authorization: `Bearer ${token}` })).statusCode, 200);
  assert.ok(!JSON.stringify(log.lines).includes(token), "the token is never logged");
  assert.ok(!none.body.includes(token) && !ok.body.includes(token));
});
