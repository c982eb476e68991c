import type { Config, SetConfig } from "../config/load.ts";
import type { BackupSummary } from "../core/types.ts";
import type { Clock } from "../platform/clock.ts";
import { backupRecord, type Catalog } from "./catalog.ts";
import { interruptGoneRuns } from "./interrupted.ts";
import { openCatalog } from "./reconcile.ts";

/**
 * A backup started by hand, recorded in the catalog like the daemon's runs so that `history`
 * and `status` show it. Best effort: a catalog that cannot be opened or written is reported
 * through `warn`, never a reason to fail or skip the backup itself.
 */
export async function withManualRun<T extends { summary: BackupSummary }>(
  config: Config,
  set: SetConfig,
  clock: Clock,
  warn: (message: string) => void,
  run: () => Promise<T>,
): Promise<T> {
  let catalog: Catalog | undefined;
  let id: number | undefined;
  const guard = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      warn(`catalog in ${config.state}: could not ${what}: ${(e as Error).message}`);
    }
  };
  guard("open it", () => {
    catalog = openCatalog(config);
    id = catalog.startRun({
      set: set.id,
      planned: null,
      trigger: "manual",
      startedAt: clock.now().toISOString(),
    });
  });
  // The first command that writes the catalog after a killed run records it (issue 9).
  guard("record interrupted runs", () => {
    if (catalog !== undefined) interruptGoneRuns(catalog, clock.now());
  });
  try {
    const result = await run();
    const s = result.summary;
    guard("record the run", () => {
      if (catalog === undefined || id === undefined) return;
      catalog.finishRun(id, {
        finishedAt: clock.now().toISOString(),
        status: s.warnings.length > 0 ? "warnings" : "ok",
        warnings: s.warnings.length,
        files: s.files,
        bytes: s.bytes,
        backup: s.name,
      });
      catalog.putBackup(backupRecord(set.id, s));
    });
    return result;
  } catch (e) {
    guard("record the failure", () => {
      if (catalog !== undefined && id !== undefined) {
        catalog.finishRun(id, {
          finishedAt: clock.now().toISOString(),
          status: "failed",
          error: (e as Error).message,
        });
      }
    });
    throw e;
  } finally {
    guard("close it", () => catalog?.close());
  }
}
