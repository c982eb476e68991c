import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { windowBuilt } from "../../src/api/web.ts";
import { defaultConfigText } from "../../src/config/init.ts";
import { BIN, type CliResult, runCli, tempDir } from "./cli.ts";
import { missingPrograms } from "./servers/need.ts";

/*
 * The window in a real browser (docs/design.md "The window and its API", testing): Debian's
 * Chromium driven by playwright-core, against a real `bsched daemon` serving the built window and
 * its API on 127.0.0.1:0, on a server root in a private temp folder. Everything is closed and
 * removed after the test (the browser first, then the daemon, in t.after, which runs when the
 * test fails too).
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

export interface WindowFixture {
  dir: string;
  root: string;
  config: string;
  url: string;
  context: BrowserContext;
  page: Page;
  /** The daemon's log lines so far (JSON, parsed). */
  log(): { msg: string; [k: string]: unknown }[];
  /** Stop the daemon (SIGTERM) and wait for it to exit: the window is left without it. */
  stopDaemon(): Promise<void>;
  cli(args: string[]): Promise<CliResult>;
}

/** The window's administrator in these tests (added with `bsched user add --stdin`, never in argv). */
export const ADMIN = { user: "admin", password: `window-${randomBytes(9).toString("base64url")}` };

/**
 * A server root with the four standard sets (as `bsched init` writes them: comments included),
 * a few files in each source, a real `bsched daemon` serving the window on a free loopback port,
 * an administrator added by the CLI, and a Chromium page on the window, logged in through its
 * form. Undefined (the test skipped) when Chromium is missing.
 */
export async function openWindow(
  t: { after(fn: () => Promise<void>): void; skip(message?: string): void },
  opts: {
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
  const cleanups: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  });
  const root = path.join(dir, "srv");
  for (const [rel, content] of Object.entries({ ...SOURCES, ...opts.files })) {
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
  const cli = (args: string[], input?: string) =>
    runCli([...args, "--config", config], {
      cwd: dir,
      timeoutMs: 120_000,
      ...(input === undefined ? {} : { input }),
    });
  const added = await cli(["user", "add", ADMIN.user, "--stdin"], ADMIN.password);
  if (added.code !== 0) throw new Error(`bsched user add: ${added.stderr}`);

  const daemon = spawn(process.execPath, [BIN, "daemon", "--config", config], {
    cwd: dir,
    env: { ...process.env, BSCHED_CONFIG: undefined },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  daemon.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<void>((r) => daemon.on("close", () => r()));
  const stopDaemon = async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill("SIGTERM");
    const killer = setTimeout(() => daemon.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(killer);
  };
  cleanups.push(stopDaemon);
  const log = () =>
    stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { msg: string; [k: string]: unknown });
  let url = "";
  for (const until = Date.now() + 120_000; url === ""; ) {
    url =
      log()
        .find((l) => l.msg.startsWith("window at "))
        ?.msg.slice("window at ".length) ?? "";
    if (url !== "") break;
    if (daemon.exitCode !== null || Date.now() > until)
      throw new Error(`the daemon served no window:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  const context = await launchBrowser(path.join(dir, "profile"));
  cleanups.push(() => context.close());
  context.setDefaultTimeout(30_000);
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(url);
  if (opts.login !== false) await logIn(page, ADMIN.user, ADMIN.password);
  return { dir, root, config, url, context, page, log, stopDaemon, cli: (args) => cli(args) };
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
const SOURCES: Record<string, string> = {
  "Data/cardholders.db": "cardholders\n".repeat(2000),
  "Data/doors.db": "doors\n".repeat(500),
  "Data/cfg/site.ini": "[site]\nid=1\n",
  "Archive/events-2026-11.db": "event\n".repeat(5000),
  "Archive/events-2026-12.db": "event\n".repeat(300),
  "Time/punches.db": "in/out\n".repeat(800),
  "Video/video-events.db": "clip\n".repeat(400),
};
