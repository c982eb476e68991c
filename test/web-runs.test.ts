import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { openWindow, screen } from "./helpers/browser.ts";
import { diffTrees, snapshotTree } from "./helpers/tree.ts";

/*
 * Runs from the window in a real browser (issue 12 "Must show"): Back up now with its live
 * progress, then the history row and the backup on disk; the restore wizard, then the restored
 * folder compared with the source.
 */

/**
 * Run in the page: every state the progress panels go through is recorded by the page itself
 * (window.seen), so a state shown for an instant is seen whatever the test's own pace.
 */
const RECORD_PROGRESS = `
  window.seen = [];
  new MutationObserver(() => {
    for (const el of document.querySelectorAll(".run-progress"))
      window.seen.push({
        ended: el.getAttribute("data-ended"),
        value: el.querySelector('[role="progressbar"]')?.getAttribute("aria-valuenow") ?? null,
        figures: el.querySelector(".run-figures")?.textContent ?? "",
      });
  }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
`;

/** A file big enough that a backup of it reports progress many times (every 4 MiB). */
const BIG = Buffer.alloc(64 << 20, "0123456789abcdef");

test("Back up now shows the run's live progress, then a history row and a new backup on disk", async (t) => {
  const w = await openWindow(t, { files: { "Data/zz-big.db": BIG } });
  if (!w) return;
  const { page } = w;
  const row = page.locator('tr[data-set="data"]');
  await row.waitFor();
  await page.evaluate(RECORD_PROGRESS);
  await row.getByRole("button", { name: "Back up now" }).click();
  await page.locator('.run-progress[data-ended="yes"]').waitFor({ timeout: 120_000 });
  await page.getByText(/Backup D_\S+ done\./).waitFor();
  const seen = (await page.evaluate("window.seen")) as { ended: string; value: string; figures: string }[];
  const live = seen.filter((s) => s.ended === "no" && /files/.test(s.figures));
  assert.ok(live.length > 0, `no progress seen while the backup ran: ${JSON.stringify(seen.slice(-5))}`);
  assert.ok(
    live.some((s) => Number(s.value) > 0 && Number(s.value) < 100),
    `the bar never stood between 0 and 100: ${JSON.stringify(live.slice(0, 5))}`,
  );

  const backups = (await fs.readdir(path.join(w.root, "Backup"))).filter((n) => n.startsWith("D_"));
  assert.equal(backups.length, 1, backups.join(", "));
  const name = backups[0] as string;
  await fs.access(path.join(w.root, "Backup", name, "manifest.json"));

  await screen(page, "History");
  const hist = page.locator("tr[data-run]", { hasText: name });
  await hist.waitFor();
  assert.equal(await hist.getAttribute("data-status"), "ok");
  assert.match((await hist.textContent()) ?? "", /Data/);
  // The status row counts it too.
  await screen(page, "Status");
  await page.locator('tr[data-set="data"] .backups-cell .count', { hasText: "1" }).waitFor();
});

test("the restore wizard restores a backup into a new folder that equals the source", async (t) => {
  const w = await openWindow(t, {
    files: { "Data/sub/deeper/notes.txt": "nested\n", "Data/empty/.keep": "" },
  });
  if (!w) return;
  const { page } = w;
  const made = await w.service.runNow("data").result;
  await screen(page, "Backups and restore");
  const item = page.locator(`[data-backup="${made.summary.name}"] button`);
  await item.click();
  // Its files, from its manifest.
  await page.locator('tr[data-path="cardholders.db"]').waitFor();
  await page.getByRole("button", { name: "Restore…" }).click();
  const wizard = page.getByRole("region", { name: "Restore" });
  const target = await wizard.getByLabel("Restore into").inputValue();
  assert.equal(target, path.join(w.root, "Restore", made.summary.name));
  await assert.rejects(fs.access(target), "the default target is a new folder");
  await wizard.getByRole("button", { name: "Restore", exact: true }).click();
  const result = wizard.locator('[data-result="restored"]');
  await result.waitFor({ timeout: 120_000 });
  assert.match((await result.textContent()) ?? "", /every file checked/);
  assert.deepEqual(diffTrees(await snapshotTree(path.join(w.root, "Data")), await snapshotTree(target)), []);
});
