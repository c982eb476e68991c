import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { buildApi } from "../src/api/server.ts";
import { openCatalog } from "../src/catalog/reconcile.ts";
import { loadConfig } from "../src/config/load.ts";
import { DaemonService } from "../src/daemon/service.ts";
import { checkDiskSpace } from "../src/ops/disk-space.ts";
import { status } from "../src/ops/status.ts";
import { systemClock } from "../src/platform/clock.ts";
import { freeBytes } from "../src/platform/disk.ts";
import { recordingLog, testAuth } from "./helpers/api.ts";
import { makeServer } from "./helpers/server.ts";

/*
 * Room for the next full backup (issue 14 item 5): the backup folder's free space (statfs) against
 * the last full backup's size in the catalog; warned in the daemon's log, shown by `status` and
 * exported by /metrics. A disk of a chosen size is injected where a real full disk is needed.
 */

test("free space is measured on the real disk (at the nearest existing parent of a folder not made yet); the estimate is the last full's size", async (t) => {
  const server = await makeServer({ prefix: "bsched-disk-" });
  t.after(() => fs.rm(server.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(server.data, "a.db"), "x".repeat(5000));
  const config = loadConfig(server.config, () => undefined);
  assert.ok((await freeBytes(path.join(server.backups, "not", "yet"))) > 0);

  const cat0 = openCatalog(config);
  const [before] = await checkDiskSpace(config, cat0);
  cat0.close();
  assert.equal(before?.set, "data");
  assert.equal(before?.nextFull, null, "no full backup yet: no estimate");
  assert.equal(before?.low, false);
  assert.ok((before?.free ?? 0) > 0);

  const full = await server.backup();
  await fs.writeFile(path.join(server.data, "b.db"), "y".repeat(100));
  const inc = await server.backup();
  assert.equal(inc.mode, "incremental");
  const cat = openCatalog(config);
  t.after(() => cat.close());
  const rec = cat.backups("data").find((b) => b.name === full.name);
  const [after] = await checkDiskSpace(config, cat);
  assert.equal(after?.from, full.name, "the last full, not the newer incremental");
  assert.equal(after?.nextFull, rec?.diskBytes ?? rec?.storedBytes);
  assert.ok((after?.nextFull ?? 0) >= 5000);
  assert.equal(after?.low, false, "a test's few KB fit on this disk");

  // `bsched status` shows it, and says nothing of a warning.
  const st = await server.cli(["status"]);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /^ {2}disk: {6}\S+ \S+ free in .*Backup; next full about \S+ \S+ \(as D_/m);
  assert.doesNotMatch(st.stdout, /may not fit/);
  const json = JSON.parse((await server.cli(["status", "--json"])).stdout);
  assert.equal(json.sets[0].disk.from, full.name);
  assert.equal(json.service.installed, false);
});

test("a folder with less room than the next full: the daemon warns at start and after each run, status and /metrics say so", async (t) => {
  const server = await makeServer({ prefix: "bsched-disk-low-" });
  t.after(() => fs.rm(server.dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(server.data, "a.db"), "x".repeat(5000));
  const full = await server.backup();
  const tiny = async () => 1000; // a disk with 1 KB left
  const log = recordingLog();
  const service = new DaemonService({
    configFile: server.config,
    clock: systemClock,
    log,
    watchMs: 0,
    control: false,
    diskFree: tiny,
  });
  await service.start();
  const app = await buildApi({ service, clock: systemClock, log, auth: testAuth });
  t.after(async () => {
    await app.close();
    await service.stop({ graceMs: 10_000 }).catch(() => undefined);
  });
  const warned = () => log.lines.filter((l) => l.msg.startsWith("the backup folder ") && "nextFull" in l.obj);
  await service.scheduler.idle();
  assert.equal(warned().length, 1, JSON.stringify(log.lines));
  const w = warned()[0];
  assert.equal(w?.level, "warn");
  assert.match(
    w?.msg ?? "",
    new RegExp(
      `^the backup folder .*Backup has 1.0 KB free, less than the next full backup of set data is expected to take \\(\\d+\\.\\d KB, the size of ${full.name}\\)$`,
    ),
  );
  assert.match(String(w?.obj.hint), /free space on that disk, keep fewer backups/);

  await service.runNow("data").result;
  await service.scheduler.idle();
  assert.equal(warned().length, 2, "checked again after the run");

  const st = await status(
    { config: service.config, clock: systemClock, catalog: service.catalog },
    { diskFree: tiny },
  );
  assert.equal(st.sets[0]?.disk?.low, true);
  assert.equal(st.sets[0]?.disk?.free, 1000);

  const m = await app.inject({ method: "GET", url: "/metrics" });
  assert.equal(m.statusCode, 200);
  assert.match(m.body, /^bsched_backup_folder_low\{set="data"\} 1$/m);
  assert.match(m.body, /^bsched_backup_folder_free_bytes\{set="data",folder="[^"]+"\} 1000$/m);
});
