import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { type CliResult, runCli, tempDir } from "./cli.ts";

const WRITER = fileURLToPath(new URL("../fixtures/sqlite-writer.ts", import.meta.url));

export interface LiveServer {
  dir: string;
  config: string;
  root: string;
  data: string;
  backups: string;
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
}

/** A server root with one set `data` (D, source Data) and a config in UTC; `extra` goes under the set. */
export async function makeLiveServer(
  opts: { setExtra?: string; serverExtra?: string; prefix?: string } = {},
): Promise<LiveServer> {
  const dir = await tempDir(opts.prefix ?? "bsched-live-");
  const root = path.join(dir, "srv");
  const data = path.join(root, "Data");
  await fs.mkdir(data, { recursive: true });
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: UTC
${opts.serverExtra ?? ""}sets:
  data:
    letter: D
    source: Data
    mode: incremental
    frequency: now
${opts.setExtra ?? ""}`,
  );
  return {
    dir,
    config,
    root,
    data,
    backups: path.join(root, "Backup"),
    cli: (args, env) => runCli([...args, "--config", config], { cwd: dir, env }),
  };
}

export interface WriterProcess {
  child: ChildProcess;
  /** Resolves once every database holds committed rows. */
  ready: Promise<void>;
  /** SIGTERM, wait for the exit; resolves with the number of commit rounds. */
  stop(): Promise<number>;
}

/** Start the stand-in application (test/fixtures/sqlite-writer.ts) on "file:wal" / "file:delete" databases. */
export function startWriter(dbs: string[], seedRows = 0): WriterProcess {
  const child = spawn(process.execPath, [WRITER, `--seed=${seedRows}`, ...dbs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr?.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d) => {
      out += d;
      if (out.includes("ready\n")) resolve();
    });
    exited.then((code) => reject(new Error(`writer exited early (${code}): ${err}`)));
  });
  ready.catch(() => undefined);
  return {
    child,
    ready,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
      return Number(/commits (\d+)/.exec(out)?.[1] ?? 0);
    },
  };
}

export interface DbCheck {
  integrity: string;
  counter: number;
  rows: number;
  journalMode: string;
}

/** Open a restored database and read what the test asserts: integrity and the writer's invariant. */
export function checkDb(file: string): DbCheck {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const integrity = (db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .join("; ");
    const counter = Number((db.prepare("SELECT n FROM counter").get() as { n: number }).n);
    const rows = Number((db.prepare("SELECT count(*) AS c FROM events").get() as { c: number }).c);
    const journalMode = String(
      (db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode,
    );
    return { integrity, counter, rows, journalMode };
  } finally {
    db.close();
  }
}

export function checkDbIntegrity(file: string): string {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return (db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .join("; ");
  } finally {
    db.close();
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(
  what: string,
  cond: () => Promise<boolean> | boolean,
  ms = 30_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
