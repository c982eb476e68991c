import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { openWindow } from "./helpers/browser.ts";
import { writeCardsDb } from "./helpers/drill.ts";

// Issue 14 item 1: the window's Status screen shows "last proven restorable" per set and place,
// with the restore time, and a failed drill with its code and fix.

test("the Status screen shows when each set was last proven restorable, with the restore time, and a failed drill's fix", {
  timeout: 300_000,
}, async (t) => {
  const w = await openWindow(t);
  if (!w) return;
  const { page } = w;
  const text = await fs.readFile(w.config, "utf8");
  await fs.writeFile(
    w.config,
    text.replace(/^( {2}data:.*\n)/m, `$1    drill: { scratch: ${path.join(w.dir, "scratch")} }\n`),
  );
  await writeCardsDb(path.join(w.root, "Data", "cards.db"));
  const b = await w.cli(["backup", "data"]);
  assert.equal(b.code, 0, b.stderr);
  const d = await w.cli(["drill", "data"]);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stderr, new RegExp(`into ${path.join(w.dir, "scratch")}/`), "the test's own scratch folder");

  const row = page.locator('tr[data-set="data"]');
  const proven = row.locator('[data-drill="local"] .ok');
  for (const until = Date.now() + 90_000; !(await proven.isVisible()); ) {
    if (Date.now() > until) throw new Error("the Status screen never showed the drill");
    await page.reload();
    await row.waitFor();
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.match((await proven.textContent()) ?? "", /· restore \d+\.\d s$/);
  // A set that has no drill says so.
  assert.equal(await page.locator('tr[data-set="video"] .drills-cell').textContent(), "no drill");

  // A failed drill: the place shows it, with the code and the fix.
  await fs.writeFile(
    w.config,
    (await fs.readFile(w.config, "utf8")).replace(
      `drill: { scratch: ${path.join(w.dir, "scratch")} }`,
      `drill: { scratch: ${path.join(w.dir, "scratch")}, check: "exit 4" }`,
    ),
  );
  const f = await w.cli([
    "drill",
    "data",
    "--backup",
    (await fs.readdir(path.join(w.root, "Backup"))).find((n) => n.startsWith("D_")) as string,
  ]);
  assert.equal(f.code, 1, f.stderr);
  const failed = row.locator('[data-drill="local"] .bad');
  for (const until = Date.now() + 90_000; !(await failed.isVisible()); ) {
    if (Date.now() > until) throw new Error("the Status screen never showed the failed drill");
    await page.reload();
    await row.waitFor();
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.match(
    (await failed.textContent()) ?? "",
    /Last drill failed .*DRILL_FAILED: drill of set data from local.*exited with code 4.*Fix: the check command/,
  );
});
