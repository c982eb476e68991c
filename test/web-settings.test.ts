import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { parse } from "yaml";
import { openWindow, screen } from "./helpers/browser.ts";

/*
 * The seed's window in a real browser (issue 12 "Must show"): the Archive tab changed and saved,
 * Cancel, and a bad time — each checked in bsched.yaml itself.
 */

/** The Archive tab of the Backup Scheduler screen. */
async function archiveTab(page: Page) {
  await screen(page, "Backup Scheduler");
  await page.getByRole("tab", { name: "Archive" }).click();
  const tab = page.locator('[data-set="archive"]');
  await tab.waitFor();
  return tab;
}

/** The next run times the window shows, once they are `n` and satisfy `ok`. */
async function shownNextRuns(page: Page, ok: (iso: string) => boolean): Promise<string[]> {
  const items = page.locator('[data-set="archive"] .next-list li');
  let got: string[] = [];
  for (let i = 0; i < 600; i++) {
    got = await items.evaluateAll((els) => els.map((e) => e.getAttribute("data-iso") ?? ""));
    if (got.length === 3 && got.every(ok)) return got;
    await page.waitForTimeout(100);
  }
  throw new Error(`the window's next runs never matched: ${got.join(", ")}`);
}

/** Every comment of `before` is in `after`, in the same order. */
function commentsKept(before: string, after: string): string[] {
  const comments = (text: string) =>
    text
      .split("\n")
      .map((l) => /#.*$/.exec(l)?.[0].trim())
      .filter((c): c is string => c !== undefined);
  const a = comments(after);
  const lost: string[] = [];
  let at = 0;
  for (const c of comments(before)) {
    const i = a.indexOf(c, at);
    if (i === -1) lost.push(c);
    else at = i + 1;
  }
  return lost;
}

test("the Archive tab set to monthly, last day, 23:30, compressed incremental: OK writes exactly those keys, comments kept, and bsched next agrees", async (t) => {
  const w = await openWindow(t);
  if (!w) return;
  const { page } = w;
  const before = await fs.readFile(w.config, "utf8");
  const tab = await archiveTab(page);
  await tab.getByLabel("Type").selectOption({ label: "Self-extracting compressed file (incremental)" });
  await tab.getByRole("radio", { name: "Monthly" }).check();
  await tab.getByLabel("Day").selectOption("last");
  await tab.getByLabel("Time").fill("23:30");
  // The next three runs follow the unsaved settings: the last day of three months, at 23:30 UTC.
  const lastDayAt2330 = (iso: string) => {
    const d = new Date(iso);
    const tomorrow = new Date(d.getTime() + 86_400_000);
    return d.getUTCHours() === 23 && d.getUTCMinutes() === 30 && tomorrow.getUTCDate() === 1;
  };
  const shown = await shownNextRuns(page, lastDayAt2330);

  await page.getByRole("button", { name: "OK", exact: true }).click();
  await page.getByText("Saved: Archive.").waitFor();

  const after = await fs.readFile(w.config, "utf8");
  const expected = parse(before);
  Object.assign(expected.sets.archive, {
    type: "compressed",
    mode: "incremental",
    frequency: "monthly",
    day: "last",
    time: "23:30",
  });
  assert.deepEqual(parse(after), expected, after);
  assert.deepEqual(commentsKept(before, after), [], after);
  // Only the archive's lines changed, each in place.
  const a = before.split("\n");
  const b = after.split("\n");
  assert.equal(b.length, a.length, after);
  const changed = a.flatMap((line, i) => (line === b[i] ? [] : [line.trim().split(":")[0]]));
  assert.deepEqual(changed.sort(), ["day", "frequency", "mode", "time", "type"]);
  const start = a.findIndex((l) => l.startsWith("  archive:"));
  const end = a.findIndex((l, i) => i > start && /^ {2}\w/.test(l));
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i]) assert.ok(i > start && i < end, `line ${i + 1} changed`);

  const next = await w.cli(["next", "archive", "--json", "--count", "3"]);
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(
    (JSON.parse(next.stdout) as { at: string }[]).map((r) => r.at),
    shown,
  );
});

test("Cancel discards the tab's changes: bsched.yaml is not touched and the form shows the file again", async (t) => {
  const w = await openWindow(t);
  if (!w) return;
  const { page } = w;
  const before = await fs.readFile(w.config);
  const stat = await fs.stat(w.config);
  const tab = await archiveTab(page);
  await tab.getByRole("radio", { name: "Daily" }).check();
  await tab.getByLabel("Time").fill("01:15");
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.getByText("Changes discarded.").waitFor();
  assert.equal(await tab.getByLabel("Time").inputValue(), "04:00");
  assert.equal(await tab.getByRole("radio", { name: "Weekly" }).isChecked(), true);
  // OK now has nothing to write.
  await page.getByRole("button", { name: "OK", exact: true }).click();
  await page.getByText("Nothing changed.").waitFor();
  assert.deepEqual(await fs.readFile(w.config), before);
  assert.equal((await fs.stat(w.config)).mtimeMs, stat.mtimeMs);
});

test('a bad time ("25:00") is shown beside the Time field with the CLI\'s message, and nothing is written', async (t) => {
  const w = await openWindow(t);
  if (!w) return;
  const { page } = w;
  const before = await fs.readFile(w.config);
  const tab = await archiveTab(page);
  await tab.getByLabel("Time").fill("25:00");
  await page.getByRole("button", { name: "OK", exact: true }).click();
  const error = tab.locator(".field.has-error", { has: page.getByLabel("Time") }).locator(".field-error");
  await error.waitFor();
  assert.match((await error.textContent()) ?? "", /24-hour time "HH:MM"/);
  await page.getByText(/Nothing written/).waitFor();
  assert.deepEqual(await fs.readFile(w.config), before);
});

test("+ New set adds a custom set to bsched.yaml, and it gets its own tab", async (t) => {
  const w = await openWindow(t, { files: { "Badges/cards.db": "badges\n" } });
  if (!w) return;
  const { page } = w;
  const before = await fs.readFile(w.config, "utf8");
  await screen(page, "Backup Scheduler");
  await page.getByRole("tab", { name: "+ New set" }).click();
  await page.getByLabel("Set id").fill("badges");
  await page.getByLabel("Letter").fill("A");
  await page.getByLabel("Source folder").fill("Badges");
  await page.getByRole("button", { name: "Add the set" }).click();
  // A letter another set uses: said beside the field, nothing written.
  await page.locator(".field-error", { hasText: "archive" }).waitFor();
  assert.equal(await fs.readFile(w.config, "utf8"), before);
  await page.getByLabel("Letter").fill("B");
  await page.getByRole("button", { name: "Add the set" }).click();
  await page.getByRole("tab", { name: "badges" }).waitFor();
  await page.locator('[data-set="badges"]').waitFor();
  const after = parse(await fs.readFile(w.config, "utf8"));
  assert.equal(after.sets.badges.letter, "B");
  assert.equal(after.sets.badges.source, "Badges");
  assert.deepEqual(commentsKept(before, await fs.readFile(w.config, "utf8")), []);
});
