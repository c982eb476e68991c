import fs from "node:fs/promises";
import path from "node:path";
import { type CliResult, runCli, tempDir } from "./cli.ts";

export interface TestServer {
  /** The temp folder holding everything (config, root, outputs). */
  dir: string;
  config: string;
  root: string;
  /** Source folder of the set "data" (letter D). */
  data: string;
  /** The default backup folder. */
  backups: string;
  /** The CLI with this config; `input` is written to its stdin (`secret set --stdin`). */
  cli(args: string[], env?: NodeJS.ProcessEnv, input?: string): Promise<CliResult>;
  /** `backup data --json`, asserting success (or exit 3 when `allowWarnings`); returns the summary. */
  backup(args?: string[]): Promise<{
    name: string;
    mode: string;
    parent: string | null;
    storedFiles: number;
    files: number;
    warnings: unknown[];
    path: string;
  }>;
}

/**
 * A server root with one set `data` (D, source Data, incremental) and a config in UTC, with no
 * window (a daemon on it must not race other tests for 127.0.0.1:8420);
 * `setKeys` adds YAML lines to the set (e.g. "type: compressed").
 */
export async function makeServer(
  opts: { mode?: "full" | "incremental"; prefix?: string; setKeys?: string[] } = {},
): Promise<TestServer> {
  const dir = await tempDir(opts.prefix);
  const root = path.join(dir, "srv");
  const data = path.join(root, "Data");
  await fs.mkdir(data, { recursive: true });
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: UTC
  web: { enabled: false }
sets:
  data:
    letter: D
    source: Data
    mode: ${opts.mode ?? "incremental"}
    frequency: now
${(opts.setKeys ?? []).map((k) => `    ${k}\n`).join("")}`,
  );
  const cli = (args: string[], env?: NodeJS.ProcessEnv, input?: string) =>
    runCli([...args, "--config", config], { cwd: dir, env, ...(input === undefined ? {} : { input }) });
  return {
    dir,
    config,
    root,
    data,
    backups: path.join(root, "Backup"),
    cli,
    async backup(args = []) {
      const r = await cli(["backup", "data", "--json", ...args]);
      if (r.code !== 0) throw new Error(`backup exited ${r.code}: ${r.stderr}`);
      return JSON.parse(r.stdout);
    },
  };
}
