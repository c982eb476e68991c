import fs from "node:fs/promises";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { hasSqliteHeader } from "../source/sqlite.ts";

/** From this size on, `PRAGMA quick_check` runs first: a database it finds damaged needs no integrity_check. */
export const QUICK_CHECK_FROM_BYTES = 1 << 30;
/** How many problems SQLite is asked to list (the record keeps the first few). */
const MAX_ERRORS = 20;

export interface SqliteCheck {
  /** Relative path in the restored tree ("/" separators). */
  path: string;
  ok: boolean;
  /** `integrity_check: ok`, or what SQLite said (its first problems, or why it could not open it). */
  detail: string;
}

/** Every regular file under `dir` that starts with SQLite's header; links are never followed. */
export async function findDatabases(dir: string): Promise<{ rel: string; size: number }[]> {
  const found: { rel: string; size: number }[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) {
        const fh = await fs.open(path.join(dir, r), "r");
        try {
          const { size } = await fh.stat();
          if (await hasSqliteHeader(fh, size)) found.push({ rel: r, size });
        } finally {
          await fh.close();
        }
      }
    }
  };
  await walk("");
  return found;
}

/*
 * Runs in a worker thread: integrity_check of a large database takes minutes of synchronous work,
 * which would stall the daemon's schedule and window. Plain JavaScript (a worker from a string).
 */
const WORKER = `
const { DatabaseSync } = require("node:sqlite");
const { parentPort, workerData } = require("node:worker_threads");
const { file, quick, max } = workerData;
let db;
try {
  db = new DatabaseSync(file);
  const run = (pragma) =>
    db.prepare("PRAGMA " + pragma + "(" + max + ")").all().map((r) => String(Object.values(r)[0]));
  let pragma = "integrity_check";
  let rows = quick ? run("quick_check") : ["ok"];
  if (quick && !(rows.length === 1 && rows[0] === "ok")) pragma = "quick_check";
  else rows = run("integrity_check");
  parentPort.postMessage({ pragma, rows });
} catch (e) {
  parentPort.postMessage({ pragma: "open", rows: [String((e && e.message) || e)] });
} finally {
  try { db && db.close(); } catch {}
}
`;

/**
 * `PRAGMA integrity_check` of one database (after `quick_check` when it is `quickFrom` bytes or
 * more), in a worker; the signal terminates it. The database is opened read-write: it is the
 * drill's own restored copy, and SQLite may have to roll back a journal to read it.
 */
export async function checkDatabase(
  file: string,
  size: number,
  opts: { quickFrom?: number | undefined; signal?: AbortSignal | undefined } = {},
): Promise<{ ok: boolean; detail: string }> {
  const quick = size >= (opts.quickFrom ?? QUICK_CHECK_FROM_BYTES);
  const worker = new Worker(WORKER, { eval: true, workerData: { file, quick, max: MAX_ERRORS } });
  const onAbort = () => void worker.terminate();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const r = await new Promise<{ pragma: string; rows: string[] }>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`the check stopped (exit ${code})`)));
    });
    const ok = r.pragma !== "open" && r.rows.length === 1 && r.rows[0] === "ok";
    const what = r.pragma === "open" ? "cannot be read" : r.pragma;
    const quickNote = quick && r.pragma === "integrity_check" ? "quick_check: ok; " : "";
    return { ok, detail: `${quickNote}${what}: ${r.rows.slice(0, 5).join("; ")}` };
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    await worker.terminate();
  }
}
