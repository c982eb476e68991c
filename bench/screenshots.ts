/**
 * `npm run screenshots`: each screen of the window, taken by Chromium (playwright-core) on a demo
 * server root with a few backups, into docs/screens/*.png (shown in the README's "The window").
 */
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ADMIN, logIn, screen } from "../test/helpers/browser.ts";
import { demoWindow } from "./window-demo.ts";

const OUT = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), "docs", "screens");

const w = await demoWindow({ login: false });
try {
  const { page } = w;
  // A loaded machine makes a screen slow, never wrong: wait long rather than fail half-way.
  page.setDefaultTimeout(120_000);
  await fs.mkdir(OUT, { recursive: true });
  const shot = async (name: string) => {
    // Let a screen's last answers arrive (its data, the next runs, a progress event).
    await page.waitForLoadState("networkidle").catch(() => undefined);
    await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
    process.stderr.write(`docs/screens/${name}.png\n`);
  };
  await page.getByRole("form", { name: "Log in" }).waitFor();
  await shot("login");
  await logIn(page, ADMIN.user, ADMIN.password);

  // Status, with a backup of Data running (a file appended while read keeps it in its copy phase).
  const stop = await w.startAppender();
  await page.locator('tr[data-set="data"]').getByRole("button", { name: "Back up now" }).click();
  await page.locator('.run-progress[data-ended="no"] .run-figures').waitFor();
  await shot("status");
  await page.locator('.run-progress[data-ended="yes"]').waitFor({ timeout: 120_000 });
  stop();

  await screen(page, "Backup Scheduler");
  await page.getByRole("tab", { name: "Archive" }).click();
  const tab = page.locator('[data-set="archive"]');
  await tab.getByLabel("Type").selectOption({ label: "Self-extracting compressed file (incremental)" });
  await tab.getByRole("radio", { name: "Monthly" }).check();
  await tab.getByLabel("Day").selectOption("last");
  await tab.getByLabel("Time").fill("23:30");
  await tab.locator(".next-list li").nth(2).waitFor();
  await shot("settings");
  await tab.getByLabel("Time").fill("25:00");
  await page.getByRole("button", { name: "OK", exact: true }).click();
  await tab.locator(".field-error").first().waitFor();
  await shot("settings-error");
  await page.getByRole("button", { name: "Cancel" }).click();

  await screen(page, "History");
  await page.locator("tr[data-run]").first().waitFor();
  await shot("history");

  await screen(page, "Backups and restore");
  await page.getByRole("combobox", { name: "Set" }).selectOption("archive");
  await page.locator("[data-backup] button").first().click();
  await page.locator("tr[data-path]").first().waitFor();
  await page.getByRole("button", { name: "Prune preview" }).click();
  await shot("backups");
  await page.getByRole("button", { name: "Restore…" }).click();
  await page.locator("[data-plan]").waitFor();
  await shot("restore");

  await screen(page, "System parameters");
  await page.getByLabel("Login name").waitFor();
  await shot("system");
} finally {
  await w.close();
}
