import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyReply, FastifyRequest } from "fastify";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import type { Api } from "../../src/api/api.ts";
import type { Auth } from "../../src/api/auth/auth.ts";
import { startWeb, WEB_ROOT, windowBuilt } from "../../src/api/web.ts";
import { defaultConfigText } from "../../src/config/init.ts";
import { DaemonService } from "../../src/daemon/service.ts";
import { systemClock } from "../../src/platform/clock.ts";
import { recordingLog } from "./api.ts";
import { type CliResult, runCli, tempDir } from "./cli.ts";
import { missingPrograms } from "./servers/need.ts";

/*
 * The window in a real browser (docs/design.md "The window and its API", testing): Debian's
 * Chromium driven by playwright-core, against a real daemon service serving the built window and
 * its API on 127.0.0.1:0, on a server root in a private temp folder. Everything is closed and
 * removed after the test (the browser first, in t.after, which runs when the test fails too).
 */

export const CHROMIUM = "/usr/bin/chromium";
const REPO = path.dirname(path.dirname(path.dirname(fileURLToPath(import.meta.url))));

/** Why a browser test cannot run here (Chromium missing), or undefined; fails instead under BSCHED_TEST_SERVERS=required. */
export function browserMissing(): string | undefined {
  return missingPrograms({ [CHROMIUM]: "chromium" });
}

/** Launch Chromium headless with a private profile (TEST-NOTES "Chromium with playwright-core"). */
export async function launchBrowser(profile: string): Promise<BrowserContext> {
  return await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
    viewport: { width: 1280, height: 860 },
    locale: "en-GB",
    timezoneId: "UTC",
  });
}

/** Build the window when it is not (a fresh checkout before `npm ci`): the tests need web/dist. */
export async function ensureWindowBuilt(): Promise<void> {
  if (await windowBuilt()) return;
  execFileSync(
    process.execPath,
    [path.join(REPO, "node_modules/vite/bin/vite.js"), "build", "--config", "web/vite.config.ts"],
    {
      cwd: REPO,
      stdio: "ignore",
    },
  );
}

/**
 * A session for every request: the browser tests of what the window does use it, the auth sweep
 * tests the real authentication. It answers the window's session and login calls.
 */
export const browserTestAuth: Auth = {
  async guard(req: FastifyRequest, _reply: FastifyReply) {
    req.user = "admin";
  },
  routes(app: Api) {
    const session = { user: "admin", csrf: "test-csrf" };
    app.get("/session", { schema: { hide: true } }, async () => session);
    app.post("/login", { schema: { hide: true } }, async () => session);
    app.post("/logout", { schema: { hide: true } }, async () => ({}));
  },
};

export interface WindowFixture {
  dir: string;
  root: string;
  config: string;
  url: string;
  service: DaemonService;
  context: BrowserContext;
  page: Page;
  cli(args: string[]): Promise<CliResult>;
}

/**
 * A server root with the four standard sets (as `bsched init` writes them: comments included),
 * a few files in each source, the daemon service and the window on a free loopback port, and a
 * Chromium page on the window, logged in. Undefined (the test skipped) when Chromium is missing.
 */
export async function openWindow(
  t: { after(fn: () => Promise<void>): void; skip(message?: string): void },
  opts: {
    auth?: (service: DaemonService) => Auth;
    login?: boolean;
    /** More files of the server root: relative path → content. */
    files?: Record<string, string | Buffer>;
  } = {},
): Promise<WindowFixture | undefined> {
  const missing = browserMissing();
  if (missing) {
    t.skip(missing);
    return undefined;
  }
  await ensureWindowBuilt();
  const dir = await tempDir("bsched-web-");
  const root = path.join(dir, "srv");
  for (const [folder, files] of Object.entries(SOURCES)) {
    for (const [name, text] of Object.entries(files)) {
      await fs.mkdir(path.dirname(path.join(root, folder, name)), { recursive: true });
      await fs.writeFile(path.join(root, folder, name), text);
    }
  }
  for (const [rel, content] of Object.entries(opts.files ?? {})) {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fs.writeFile(path.join(root, rel), content);
  }
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    defaultConfigText(root, "UTC").replace(
      "  timezone: UTC\n",
      `  timezone: UTC\n  web: { listen: "127.0.0.1:0" }   # the window, on a free port\n`,
    ),
  );
  const log = recordingLog();
  const service = new DaemonService({
    configFile: config,
    clock: systemClock,
    log,
    watchMs: 250,
    control: false,
  });
  const cleanups: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  });
  await service.start();
  cleanups.push(() => service.stop({ graceMs: 30_000 }));
  const web = await startWeb({
    service,
    clock: systemClock,
    log,
    auth: opts.auth?.(service) ?? browserTestAuth,
    webRoot: WEB_ROOT,
  });
  cleanups.push(() => web.close());
  const context = await launchBrowser(path.join(dir, "profile"));
  cleanups.push(() => context.close());
  context.setDefaultTimeout(30_000);
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(web.url);
  if (opts.login !== false) await logIn(page, "admin", "a long enough password");
  return {
    dir,
    root,
    config,
    url: web.url,
    service,
    context,
    page,
    cli: (args) => runCli([...args, "--config", config], { cwd: dir, timeoutMs: 120_000 }),
  };
}

/** Log in through the window's form (or find the session already open), and wait for its screens. */
export async function logIn(page: Page, user: string, password: string): Promise<void> {
  const nav = page.getByRole("navigation");
  const form = page.getByRole("form", { name: "Log in" });
  await nav.or(form).first().waitFor();
  if (await form.isVisible()) {
    await page.getByLabel("Login name").fill(user);
    await page.getByLabel("Password", { exact: true }).fill(password);
    await page.getByRole("button", { name: "Log in" }).click();
  }
  await nav.waitFor();
}

/** Go to a screen by its link in the window's top bar. */
export async function screen(page: Page, name: string): Promise<void> {
  await page.getByRole("navigation").getByRole("link", { name, exact: true }).click();
}

/** What each standard set's source folder holds: a few small files, one in a subfolder. */
const SOURCES: Record<string, Record<string, string>> = {
  Data: {
    "cardholders.db": "cardholders\n".repeat(2000),
    "doors.db": "doors\n".repeat(500),
    "cfg/site.ini": "[site]\nid=1\n",
  },
  Archive: { "events-2026-11.db": "event\n".repeat(5000), "events-2026-12.db": "event\n".repeat(300) },
  Time: { "punches.db": "in/out\n".repeat(800) },
  Video: { "video-events.db": "clip\n".repeat(400) },
};
