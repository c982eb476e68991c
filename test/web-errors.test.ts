import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { test } from "node:test";
import { openWindow, screen } from "./helpers/browser.ts";

/*
 * Errors the user can act on (issue 12, part 4), in a real browser: bsched.yaml changed by
 * someone else while a tab is being edited (no silent overwrite: the window says so and offers
 * Reload), and the daemon gone (the window says it is not reachable and how to start it).
 */

test("bsched.yaml changed on disk while a tab is edited: the window says so, OK writes nothing, Reload shows the file", async (t) => {
  const w = await openWindow(t);
  if (!w) return;
  const { page } = w;
  await screen(page, "Backup Scheduler");
  await page.getByRole("tab", { name: "Archive" }).click();
  const tab = page.locator('[data-set="archive"]');
  await tab.getByLabel("Time").fill("05:45");
  // Someone else's edit, by hand: the video set's time.
  const theirs = (await fs.readFile(w.config, "utf8")).replace(
    /( {2}video:[\s\S]*?time: )"04:00"/,
    '$1"06:00"',
  );
  await fs.writeFile(w.config, theirs);
  const banner = page.getByRole("alert").filter({ hasText: "bsched.yaml was changed" }).first();
  // The daemon sees the change (its config watch, then the `config` event); OK meanwhile is
  // refused by the hash (409 CONFIG_CHANGED): either way the window says so.
  const ok = page.getByRole("button", { name: "OK", exact: true });
  if (await ok.isEnabled()) await ok.click();
  await banner.waitFor();
  assert.equal(
    await fs.readFile(w.config, "utf8"),
    theirs,
    "their edit stays, nothing of the window's written",
  );
  await page.getByRole("button", { name: "Reload" }).first().click();
  await screen(page, "Backup Scheduler");
  await page.getByRole("tab", { name: "Video event" }).click();
  assert.equal(await page.locator('[data-set="video"]').getByLabel("Time").inputValue(), "06:00");
  await page.getByRole("tab", { name: "Archive" }).click();
  assert.equal(await page.locator('[data-set="archive"]').getByLabel("Time").inputValue(), "04:00");
});

test("the daemon stopped: the window says it is not reachable and how to start it", async (t) => {
  const w = await openWindow(t);
  if (!w) return;
  const { page } = w;
  await page.locator("tr[data-set]").first().waitFor();
  await w.stopDaemon();
  const banner = page.getByRole("alert").filter({ hasText: "not reachable" });
  await banner.waitFor({ timeout: 60_000 });
  assert.match((await banner.textContent()) ?? "", /bsched daemon/);
  // A change asked for now fails with the same words, not a stack or a blank screen.
  await page.locator('tr[data-set="data"]').getByRole("button", { name: "Back up now" }).click();
  await page.locator(".error-box", { hasText: "not reachable" }).first().waitFor();
});
