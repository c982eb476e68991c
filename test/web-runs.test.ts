import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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

/**
 * A file another process appends to while it is read: each read of it sees it move, so the
 * backup re-reads it with pauses (src/format/retry.ts) and stays in its copy phase, files not
 * all done, for over a second however fast the machine — long enough for any window to show it.
 */
function appendWhileRead(file: string) {
  const child = spawn(
    process.execPath,
    [
      "-e",
      `const fs=require("node:fs");const fd=fs.openSync(process.argv[1],"a");const p=new Int32Array(new SharedArrayBuffer(4));
       process.stdout.write("go\\n");for(;;){fs.writeSync(fd,"event\\n");Atomics.wait(p,0,0,0.2);}`,
      file,
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  const started = new Promise<void>((r) => child.stdout.once("data", () => r()));
  return { started, stop: () => child.kill("SIGKILL") };
}

test("Back up now shows the run's live progress, then a history row (with its warning) and a new backup on disk", async (t) => {
  const w = await openWindow(t, { files: { "Data/zz-growing.log": Buffer.alloc(24 << 20, 0x61) } });
  if (!w) return;
  const { page } = w;
  const appender = appendWhileRead(path.join(w.root, "Data", "zz-growing.log"));
  t.after(() => appender.stop());
  await appender.started;
  const row = page.locator('tr[data-set="data"]');
  await row.waitFor();
  await page.evaluate(RECORD_PROGRESS);
  await row.getByRole("button", { name: "Back up now" }).click();
  await page.locator('.run-progress[data-ended="yes"]').waitFor({ timeout: 120_000 });
  appender.stop();
  await page.getByText(/Backup D_\S+ done\./).waitFor();
  const seen = (await page.evaluate("window.seen")) as { ended: string; value: string; figures: string }[];
  // While it ran: some files done of all (the bar's value is by bytes, and the file that grows
  // while read can take it to its end before the last file: only the files count is checked).
  const live = seen.filter((s) => {
    const m = /(\d+) \/ (\d+) files/.exec(s.figures);
    return s.ended === "no" && m !== null && Number(m[1]) < Number(m[2]);
  });
  assert.ok(
    live.length > 0,
    `no progress seen while the backup ran: ${JSON.stringify([...new Set(seen.map((s) => JSON.stringify(s)))])}`,
  );

  const backups = (await fs.readdir(path.join(w.root, "Backup"))).filter((n) => n.startsWith("D_"));
  assert.equal(backups.length, 1, backups.join(", "));
  const name = backups[0] as string;
  await fs.access(path.join(w.root, "Backup", name, "manifest.json"));

  await screen(page, "History");
  const hist = page.locator("tr[data-run]", { hasText: name });
  await hist.waitFor();
  assert.equal(await hist.getAttribute("data-status"), "warnings");
  const text = (await hist.textContent()) ?? "";
  assert.match(text, /Data/);
  assert.match(text, /CHANGED_WHILE_READ zz-growing\.log/);
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
  // A backup made by the CLI: it joins the daemon's queue (its control socket).
  const backup = await w.cli(["backup", "data", "--json"]);
  assert.equal(backup.code, 0, backup.stderr);
  const made = JSON.parse(backup.stdout) as { name: string };
  await screen(page, "Backups and restore");
  const item = page.locator(`[data-backup="${made.name}"] button`);
  await item.click();
  // Its files, from its manifest.
  await page.locator('tr[data-path="cardholders.db"]').waitFor();
  await page.getByRole("button", { name: "Restore…" }).click();
  const wizard = page.getByRole("region", { name: "Restore" });
  const target = await wizard.getByLabel("Restore into").inputValue();
  assert.equal(target, path.join(w.root, "Restore", made.name));
  await assert.rejects(fs.access(target), "the default target is a new folder");
  await wizard.getByRole("button", { name: "Restore", exact: true }).click();
  const result = wizard.locator('[data-result="restored"]');
  await result.waitFor({ timeout: 120_000 });
  assert.match((await result.textContent()) ?? "", /every file checked/);
  assert.deepEqual(diffTrees(await snapshotTree(path.join(w.root, "Data")), await snapshotTree(target)), []);
});
