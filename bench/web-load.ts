/**
 * `npm run bench:window`: the window's first load, in Chromium (playwright-core) on the demo root of
 * bench/window-demo.ts — the login page with an empty cache, and the Status screen of a logged-in
 * user with an empty cache (its data included) — time until the screen is usable and bytes
 * transferred (headers and bodies, the event stream left out: it never ends). Medians of `--runs`
 * (default 5); written to bench/results/DATE-web-load.md (`--out FILE`).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Page } from "playwright-core";
import { ADMIN, logIn } from "../test/helpers/browser.ts";
import { demoWindow } from "./window-demo.ts";

const REPO = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { values } = parseArgs({
  options: { runs: { type: "string", default: "5" }, out: { type: "string" } },
});
const RUNS = Number(values.runs);

interface Load {
  ms: number;
  bytes: number;
  requests: number;
}

/** One load of `url` with an empty cache, until `ready` is visible. */
async function load(page: Page, url: string, ready: string): Promise<Load> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.clearBrowserCache");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  // Bytes as Chromium counts them on the wire (headers and body), per finished request.
  let bytes = 0;
  let requests = 0;
  const onDone = (e: { encodedDataLength: number }) => {
    bytes += e.encodedDataLength;
    requests++;
  };
  cdp.on("Network.loadingFinished", onDone);
  await page.goto("about:blank");
  const t0 = performance.now();
  await page.goto(url);
  await page.locator(ready).first().waitFor();
  const ms = performance.now() - t0;
  // What is still on its way when the screen shows (its last data) counts too.
  await page.waitForLoadState("networkidle").catch(() => undefined);
  cdp.off("Network.loadingFinished", onDone);
  await cdp.detach();
  return { ms, bytes, requests };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

const w = await demoWindow();
const rows: { what: string; loads: Load[] }[] = [];
try {
  const { page, url } = w;
  const login: Load[] = [];
  const status: Load[] = [];
  for (let i = 0; i < RUNS; i++) {
    // A first visitor: no session cookie, the login page.
    await page.context().clearCookies();
    login.push(await load(page, url, 'form[aria-label="Log in"]'));
    await logIn(page, ADMIN.user, ADMIN.password);
    status.push(await load(page, `${url}status`, "tr[data-set]"));
  }
  rows.push({ what: "login page, empty cache", loads: login });
  rows.push({ what: "Status screen, logged in, empty cache (its data included)", loads: status });
} finally {
  await w.close();
}

const dist = path.join(REPO, "web", "dist", "assets");
const assets = await fs.readdir(dist);
const sizes = await Promise.all(
  assets.map(async (a) => ({ a, n: (await fs.stat(path.join(dist, a))).size })),
);
const rev = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO }).toString().trim();
const day = new Date().toISOString().slice(0, 10);
const out = values.out ?? path.join(REPO, "bench", "results", `${day}-web-load.md`);
const md = `# The window's first load (${day}, ${rev})

\`npm run bench:window\`: Chromium (Debian's, headless) on loopback against a real \`bsched daemon\` on the demo root of
bench/window-demo.ts; cache emptied before each load; medians of ${RUNS}. Time: from navigation until the
screen is usable (the login form; the Status table with its data). Bytes: as Chromium counts them on the
wire (headers and bodies), the event stream left out. Machine: ${os.cpus().length} cores, load average
${os
  .loadavg()
  .map((l) => l.toFixed(1))
  .join(" ")} at the end (shared).

| load | time (median) | min–max | transferred (median) | requests |
|---|---|---|---|---|
${rows
  .map(
    (r) =>
      `| ${r.what} | ${median(r.loads.map((l) => l.ms)).toFixed(0)} ms | ${Math.min(...r.loads.map((l) => l.ms)).toFixed(0)}–${Math.max(...r.loads.map((l) => l.ms)).toFixed(0)} ms | ${(median(r.loads.map((l) => l.bytes)) / 1024).toFixed(1)} KiB | ${median(r.loads.map((l) => l.requests))} |`,
  )
  .join("\n")}

The built window (web/dist/assets, served as is, uncompressed): ${sizes.map((s) => `${s.a} ${(s.n / 1024).toFixed(1)} KiB`).join(", ")}.
`;
await fs.writeFile(out, md);
process.stdout.write(md);
