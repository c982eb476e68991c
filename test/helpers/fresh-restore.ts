import fs from "node:fs/promises";
import path from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { parseConfig } from "../../src/config/load.ts";
import { SECRET_KEY_FILE, SECRET_STORE } from "../../src/platform/names.ts";
import { type CliResult, runCli, tempDir } from "./cli.ts";
import type { TestServer } from "./server.ts";
import { diffTrees, snapshotTree } from "./tree.ts";

export interface FreshRestore {
  /** The new computer's folder: its config, state and restore target. */
  dir: string;
  config: string;
  /** Where the set was restored. */
  to: string;
  /** `bsched restore SET --dest NAME --to DIR --json` as it ran. */
  result: CliResult;
  /** diffTrees(source, restored): empty when the restore is exact. */
  diffs: string[];
  /** What the new computer's state folder holds after the restore (a catalog never appears). */
  stateAfter: string[];
}

/**
 * Restore the newest state of a set from one destination on a "new computer" (issue 11, "Must
 * show"): a fresh folder with a config naming only that destination (as `server`'s config
 * describes it, and its service login) and the set (letter, type, mode), a state folder holding
 * only the old one's secret store and key (`secrets.json`, `secret.key`: never the catalog, the
 * daemon's files or scratch space; a key given by $BSCHED_SECRET_KEY_FILE comes through `env`
 * or the test's own environment), no local backups; then `bsched restore SET --dest NAME --to DIR` through the real CLI,
 * and the result compared exactly with the source folder (`source`, default server.data).
 * Assertions are the caller's: `result.code`, `diffs`, `stateAfter`.
 */
export async function restoreOnFreshComputer(
  server: TestServer,
  destination: string,
  opts: { set?: string; source?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<FreshRestore> {
  const setId = opts.set ?? "data";
  const text = await fs.readFile(server.config, "utf8");
  const old = parseConfig(text, server.config);
  const raw = parseYaml(text) as {
    server: { serviceLogin?: unknown };
    destinations?: Record<string, unknown>;
    sets: Record<string, Record<string, unknown>>;
  };
  const destConfig = raw.destinations?.[destination];
  const oldSet = raw.sets[setId];
  if (destConfig === undefined || oldSet === undefined)
    throw new Error(`${server.config} has no destination ${destination} or no set ${setId}`);

  const dir = await tempDir("bsched-fresh-");
  const root = path.join(dir, "srv");
  await fs.mkdir(root);
  // The state folder carries what secrets need (the store and its key), nothing of the catalog.
  const state = path.join(dir, "state");
  await fs.mkdir(state, { mode: 0o700 });
  for (const name of [SECRET_STORE, SECRET_KEY_FILE]) {
    // Copied with its mode: the key file must stay 0600 (bsched refuses one others may read).
    await fs
      .copyFile(path.join(old.state, name), path.join(state, name))
      .catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
  }
  const config = path.join(dir, "bsched.yaml");
  const set: Record<string, unknown> = { letter: oldSet.letter, source: "Data", frequency: "now" };
  for (const k of ["type", "mode", "compression"]) if (oldSet[k] !== undefined) set[k] = oldSet[k];
  await fs.writeFile(
    config,
    stringifyYaml({
      server: {
        root: "srv",
        state: state,
        timezone: "UTC",
        ...(raw.server.serviceLogin === undefined ? {} : { serviceLogin: raw.server.serviceLogin }),
      },
      destinations: { [destination]: destConfig },
      sets: { [setId]: set },
    }),
  );
  const to = path.join(dir, "restored");
  const result = await runCli(
    ["restore", setId, "--dest", destination, "--to", to, "--json", "--config", config],
    {
      cwd: dir,
      env: opts.env,
      timeoutMs: opts.timeoutMs ?? 600_000,
    },
  );
  const diffs =
    result.code === 0
      ? diffTrees(await snapshotTree(opts.source ?? server.data), await snapshotTree(to))
      : [`restore exited ${result.code}: ${result.stderr}`];
  return { dir, config, to, result, diffs, stateAfter: (await fs.readdir(state)).sort() };
}
