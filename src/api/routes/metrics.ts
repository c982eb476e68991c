import { timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { Counter, Gauge, Registry } from "prom-client";
import { BschedError } from "../../core/errors.ts";
import { type MetricsFacts, metricsFacts } from "../../ops/metrics.ts";
import { resolveSecret } from "../../secrets/secrets.ts";
import { VERSION } from "../../version.ts";
import type { Api, ApiDeps } from "../api.ts";

/**
 * `/metrics` (Prometheus) and `/healthz` (a service manager's probe), beside the window on the
 * daemon's web server, outside /api: the session guard does not apply to them (they are
 * `public` to it); each has its own rule, enforced here (docs/design.md "Metrics and health").
 *   - /metrics: with `server.metrics.token`, only a request bearing it (`Authorization: Bearer`),
 *     from anywhere; without a token, only this machine (a loopback client): 401 / 403 otherwise.
 *   - /healthz: anyone, no data: 200 "ok" while the schedule loop is alive, 503 otherwise.
 */
export function metricsRoutes(app: Api, deps: ApiDeps): void {
  app.get("/healthz", { config: { public: true }, schema: { hide: true } }, async (_req, reply) => {
    const ok = deps.service.healthy();
    return reply
      .status(ok ? 200 : 503)
      .header("cache-control", "no-store")
      .type("text/plain")
      .send(ok ? "ok\n" : "unavailable\n");
  });

  app.get("/metrics", { config: { public: true }, schema: { hide: true } }, async (req, reply) => {
    mayScrape(req, reply, deps);
    const { service } = deps;
    const facts = await metricsFacts({
      config: service.config,
      catalog: service.catalog,
      clock: deps.clock,
      running: service.scheduler.runningSets(),
      drills: deps.drills,
      disk: () => service.diskSpace(),
    });
    const reg = render(facts, service.healthy());
    return reply
      .header("cache-control", "no-store")
      .type(reg.contentType)
      .send(await reg.metrics());
  });
}

/** Loopback addresses, IPv4-mapped IPv6 included. */
export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.startsWith("::ffff:") ? addr.slice(7) : addr;
  return a === "::1" || /^127\.\d+\.\d+\.\d+$/.test(a);
}

function mayScrape(req: FastifyRequest, reply: FastifyReply, deps: ApiDeps): void {
  const config = deps.service.config;
  const tokenRef = config.metrics.token;
  if (tokenRef === undefined) {
    if (isLoopback(req.socket.remoteAddress)) return;
    throw new BschedError(
      "FORBIDDEN",
      "/metrics answers only this machine when server.metrics.token is not set",
      {
        hint: "scrape from this machine (127.0.0.1), or set server.metrics.token to secret:NAME (`bsched secret set NAME`) and send it as `Authorization: Bearer …`",
      },
    );
  }
  // Read at each scrape (a few hundred bytes): a token changed with `bsched secret set` applies at once.
  const token = resolveSecret(tokenRef, config.state, "server.metrics.token");
  const sent = /^Bearer\s+(.+)$/i.exec(String(req.headers.authorization ?? ""))?.[1]?.trim();
  if (sent !== undefined && sameSecret(sent, token)) return;
  void reply.header("www-authenticate", 'Bearer realm="bsched metrics"');
  throw new BschedError(
    "UNAUTHENTICATED",
    sent === undefined ? "/metrics needs its bearer token" : "/metrics: wrong bearer token",
    {
      hint: "send `Authorization: Bearer` with the secret named by server.metrics.token (Prometheus: `authorization: { credentials_file: … }`)",
    },
  );
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const seconds = (iso: string) => Date.parse(iso) / 1000;

/** The facts as a registry of its own per scrape: nothing global, nothing stale between scrapes. */
function render(f: MetricsFacts, alive: boolean): Registry {
  const reg = new Registry();
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers: [reg] });
  gauge("bsched_info", "bsched's version", ["version"]).set({ version: VERSION }, 1);
  gauge("bsched_scheduler_alive", "1 while the daemon's schedule loop runs (what /healthz answers)").set(
    alive ? 1 : 0,
  );
  const running = gauge("bsched_set_running", "1 while a backup of the set runs", ["set"]);
  const next = gauge("bsched_set_next_run_timestamp_seconds", "the set's next scheduled run", ["set"]);
  const period = gauge("bsched_set_period_seconds", "time between two scheduled runs of the set", ["set"]);
  const failures = new Counter({
    name: "bsched_set_failures_total",
    help: "backups of the set that failed (recorded in the catalog)",
    labelNames: ["set"],
    registers: [reg],
  });
  const lastRun = gauge("bsched_set_last_run_timestamp_seconds", "when the set's last run ended", ["set"]);
  const lastOk = gauge(
    "bsched_set_last_run_success",
    "1 when the set's last run succeeded (ok or warnings)",
    ["set"],
  );
  const sd = ["set", "destination"];
  const success = gauge(
    "bsched_last_success_timestamp_seconds",
    "when the newest complete backup of the set on the destination ended (destination folder: the set's own)",
    sd,
  );
  const duration = gauge("bsched_last_backup_duration_seconds", "how long the newest backup took", sd);
  const bytes = gauge("bsched_last_backup_bytes", "bytes of data the newest backup holds", sd);
  const stored = gauge("bsched_last_backup_stored_bytes", "bytes the newest backup stored", sd);
  const files = gauge("bsched_last_backup_files", "files the newest backup holds", sd);
  const count = gauge("bsched_backups", "complete backups of the set on the destination", sd);
  const copyAt = gauge(
    "bsched_copy_last_timestamp_seconds",
    "when the last copy to the destination ended",
    sd,
  );
  const copyOk = gauge("bsched_copy_last_success", "1 when the last copy to the destination succeeded", sd);
  for (const s of f.sets) {
    const set = { set: s.set };
    running.set(set, s.running ? 1 : 0);
    failures.inc(set, s.failures);
    if (s.nextRun) next.set(set, seconds(s.nextRun));
    if (s.periodSeconds !== null) period.set(set, s.periodSeconds);
    if (s.lastRun?.at) {
      lastRun.set(set, seconds(s.lastRun.at));
      lastOk.set(set, s.lastRun.status === "ok" || s.lastRun.status === "warnings" ? 1 : 0);
    }
    for (const d of s.destinations) {
      const l = { set: s.set, destination: d.destination };
      count.set(l, d.backups);
      if (d.newest) {
        success.set(l, seconds(d.newest.finishedAt));
        duration.set(l, d.newest.seconds);
        bytes.set(l, d.newest.bytes);
        stored.set(l, d.newest.storedBytes);
        files.set(l, d.newest.files);
      }
      if (d.lastCopy) {
        copyAt.set(l, seconds(d.lastCopy.at));
        copyOk.set(l, d.lastCopy.ok ? 1 : 0);
      }
    }
  }
  const drillAt = gauge("bsched_drill_last_timestamp_seconds", "when the last restore drill ended", sd);
  const drillOk = gauge("bsched_drill_last_success", "1 when the last restore drill proved the backup", sd);
  const drillTime = gauge(
    "bsched_drill_restore_seconds",
    "how long the last drill's restore took (the set's recovery time)",
    sd,
  );
  for (const d of f.drills) {
    const l = { set: d.set, destination: d.destination };
    drillAt.set(l, seconds(d.at));
    drillOk.set(l, d.ok ? 1 : 0);
    if (d.restoreSeconds !== null) drillTime.set(l, d.restoreSeconds);
  }
  const free = gauge("bsched_backup_folder_free_bytes", "free space where the set's backups are written", [
    "set",
    "folder",
  ]);
  const estimate = gauge(
    "bsched_next_full_estimate_bytes",
    "the next full backup's expected size (the last full's)",
    ["set"],
  );
  const low = gauge(
    "bsched_backup_folder_low",
    "1 when the folder's free space is below the next full's expected size",
    ["set"],
  );
  for (const c of f.disk) {
    if (c.free !== null) free.set({ set: c.set, folder: c.folder }, c.free);
    if (c.nextFull !== null) estimate.set({ set: c.set }, c.nextFull);
    low.set({ set: c.set }, c.low ? 1 : 0);
  }
  return reg;
}
