/**
 * The API's latency while the daemon works: `npm run bench:web [-- --scale 1] [--rate 20] [--out FILE]`.
 * A daemon with the window's server (bench/web-daemon.ts, its own process, as `bsched daemon`) on
 * a temporary root holding dataset A (bench/datasets.ts); GET /api/status and GET /api/history are
 * fired at a steady rate (open loop: a slow answer does not delay the next request) first while
 * the daemon is idle, then during a full backup of the whole dataset started with POST
 * /api/sets/a/backup and followed on /api/events. Prints p50/p95/p99/max per route and phase;
 * `--out` writes them as Markdown. The goal: p99 under 100 ms during the backup.
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { generateA } from "./datasets.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(path.dirname(HERE), "bin", "bsched.js");
/** The bench's own user, on its own throw-away root. */
const BENCH_PASSWORD = "bench-password-not-a-secret";

/** `bsched ARGS` with `input` on stdin; rejects on a non-zero exit. */
function runBsched(args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ["pipe", "ignore", "inherit"] });
    p.once("error", reject);
    p.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`bsched ${args[0]}: exit ${code}`))));
    p.stdin.end(input);
  });
}
const { values: args } = parseArgs({
  options: {
    scale: { type: "string", default: "1" },
    rate: { type: "string", default: "20" },
    idle: { type: "string", default: "5" },
    dir: { type: "string" },
    out: { type: "string" },
    /** Write the daemon's CPU profile (V8 .cpuprofile) into this folder: where its event loop goes. */
    profile: { type: "string" },
  },
});
const scale = Number(args.scale);
const rate = Number(args.rate);
const ROUTES = ["/api/status", "/api/history?limit=50"] as const;

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

/** Fire every route at `rate` a second each until `until` resolves; each answer's latency in ms. */
/** The bench's login: its cookie (and CSRF token, for the changes) on every request. */
const session = { headers: {} as Record<string, string> };

async function login(base: string): Promise<void> {
  const res = await fetch(`${base}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user: "bench", password: BENCH_PASSWORD }),
  });
  if (!res.ok) throw new Error(`login: ${res.status} ${await res.text()}`);
  const { csrf } = (await res.json()) as { csrf: string };
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  session.headers = { cookie, "x-csrf-token": csrf };
}

async function load(base: string, until: Promise<unknown>): Promise<Map<string, number[]>> {
  const lat = new Map<string, number[]>(ROUTES.map((r) => [r, []]));
  const inflight = new Set<Promise<void>>();
  let failures = 0;
  const fire = (route: string) => {
    const t0 = performance.now();
    const p = fetch(base + route, { headers: session.headers })
      .then(async (res) => {
        await res.arrayBuffer();
        if (!res.ok) failures++;
        else lat.get(route)?.push(performance.now() - t0);
      })
      .catch(() => {
        failures++;
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };
  let stop = false;
  void until.finally(() => {
    stop = true;
  });
  const gap = 1000 / rate;
  const start = performance.now();
  for (let i = 0; !stop; i++) {
    for (const r of ROUTES) fire(r);
    const next = start + (i + 1) * gap;
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
  }
  await Promise.all(inflight);
  if (failures > 0) process.stderr.write(`bench:web: ${failures} request(s) failed\n`);
  return lat;
}

function rows(phase: string, lat: Map<string, number[]>): string[] {
  return [...lat].map(([route, xs]) => {
    const f = (n: number) => n.toFixed(1);
    return `| ${phase} | \`GET ${route}\` | ${xs.length} | ${f(pct(xs, 50))} | ${f(pct(xs, 95))} | ${f(pct(xs, 99))} | ${f(Math.max(...xs))} |`;
  });
}

const dir = args.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), "bsched-bench-web-")));
const source = path.join(dir, "A");
const config = path.join(dir, "bsched.yaml");
let daemon: ReturnType<typeof spawn> | undefined;
try {
  process.stderr.write(`bench:web: dataset A at scale ${scale} in ${source}\n`);
  await generateA(source, scale);
  await fs.writeFile(
    config,
    [
      "server:",
      `  root: ${JSON.stringify(source)}`,
      // The catalog and the backups must not land inside the source they back up.
      `  state: ${JSON.stringify(path.join(dir, "state"))}`,
      "  timezone: UTC",
      '  web: { listen: "127.0.0.1:0" }',
      "sets:",
      "  a:",
      "    letter: A",
      `    source: ${JSON.stringify(source)}`,
      `    folder: ${JSON.stringify(path.join(dir, "backups"))}`,
      "    type: separate",
      "    mode: full",
      "    frequency: now",
      "",
    ].join("\n"),
  );
  await fs.mkdir(path.join(dir, "backups"));
  await runBsched(["user", "add", "bench", "--stdin", "--config", config], BENCH_PASSWORD);
  const prof = args.profile ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(args.profile)}`] : [];
  daemon = spawn(process.execPath, [...prof, path.join(HERE, "web-daemon.ts"), config], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    daemon?.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) resolve((JSON.parse(buf.slice(0, nl)) as { url: string }).url);
    });
    daemon?.once("exit", (code) => reject(new Error(`the daemon exited ${code}`)));
  });
  const base = url.replace(/\/$/, "");
  process.stderr.write(`bench:web: daemon at ${base}; idle for ${args.idle} s at ${rate}/s per route\n`);
  await login(base);
  const idle = await load(base, new Promise((r) => setTimeout(r, Number(args.idle) * 1000)));

  // The backup, followed on the event stream: its end stops the load.
  const events = await fetch(`${base}/api/events`, { headers: session.headers });
  const started = (await (
    await fetch(`${base}/api/sets/a/backup`, {
      method: "POST",
      headers: { ...session.headers, "content-type": "application/json" },
      body: JSON.stringify({ mode: "full" }),
    })
  ).json()) as { id: string };
  let progress = 0;
  const ended = (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of events.body as AsyncIterable<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (block.startsWith("event: progress")) progress++;
        if (block.startsWith("event: run") && block.includes('"type":"ended"') && block.includes(started.id))
          return JSON.parse(block.slice(block.indexOf("data: ") + 6)) as {
            ok: boolean;
            result: unknown;
            error: unknown;
          };
      }
    }
    throw new Error("the event stream ended before the backup");
  })();
  const t0 = performance.now();
  const busy = await load(base, ended);
  const seconds = (performance.now() - t0) / 1000;
  const outcome = await ended;
  if (!outcome.ok) throw new Error(`the backup failed: ${JSON.stringify(outcome.error)}`);
  const r = outcome.result as { backup: { name: string; files: number; bytes: number } };
  await events.body?.cancel().catch(() => undefined);

  const table = [
    "| phase | route | requests | p50 ms | p95 ms | p99 ms | max ms |",
    "|---|---|---|---|---|---|---|",
    ...rows("idle", idle),
    ...rows("during the backup", busy),
  ];
  const busyP99 = Math.max(...[...busy.values()].map((xs) => pct(xs, 99)));
  const text = [
    `Dataset A at scale ${scale}: full backup ${r.backup.name}, ${r.backup.files} files, ${(r.backup.bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(1)} s (${progress} progress events on /api/events).`,
    `Load: each route ${rate} requests/s, open loop, from another process over loopback HTTP; ${os.cpus().length} CPUs, Node ${process.version}.`,
    "",
    ...table,
    "",
    `p99 during the backup: ${busyP99.toFixed(1)} ms (goal < 100 ms): ${busyP99 < 100 ? "met" : "NOT met"}.`,
  ].join("\n");
  process.stdout.write(`${text}\n`);
  if (args.out) await fs.writeFile(args.out, `${text}\n`);
} finally {
  if (daemon && daemon.exitCode === null) {
    const gone = new Promise((r) => daemon?.once("exit", r));
    daemon.kill("SIGTERM");
    await gone;
  }
  if (!args.dir) await fs.rm(dir, { recursive: true, force: true });
}
