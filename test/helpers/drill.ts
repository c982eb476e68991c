import fs from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { DrillRecord } from "../../src/catalog/catalog.ts";

/** What `bsched drill SET --json` prints. */
export interface DrillJson {
  set: string;
  ok: boolean;
  drills: DrillRecord[];
  removed: string[];
}

/** A small database of card holders with an index, as the application keeps it. */
export async function writeCardsDb(file: string, rows = 300): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.rm(file, { force: true });
  const db = new DatabaseSync(file);
  try {
    db.exec(
      "CREATE TABLE cards (id INTEGER PRIMARY KEY, holder TEXT NOT NULL); CREATE INDEX cards_holder ON cards(holder);",
    );
    const ins = db.prepare("INSERT INTO cards (holder) VALUES (?)");
    db.exec("BEGIN");
    for (let i = 0; i < rows; i++) ins.run(`holder-${String(i).padStart(5, "0")}`);
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

/**
 * Damage a page of the database the way a disk or a bug does, leaving a file SQLite still opens
 * and copies: one holder's name is changed in place in the table and the index alike, so the index
 * is out of order and rows are missing from it. `PRAGMA integrity_check` finds it; nothing else
 * does (a backup of it holds it faithfully, its sha256 matching).
 */
export async function damageCardsDb(file: string): Promise<void> {
  const buf = await fs.readFile(file);
  const mark = Buffer.from("holder-00150", "latin1");
  let n = 0;
  for (let i = buf.indexOf(mark); i >= 0; i = buf.indexOf(mark, i + 1), n++)
    buf.write("holder-99150", i, "latin1");
  if (n === 0) throw new Error(`damageCardsDb: nothing to damage in ${file}`);
  await fs.writeFile(file, buf);
}

/** What SQLite itself says of a database: "ok", or its first problem. */
export function integrityOf(file: string): string {
  const db = new DatabaseSync(file);
  try {
    const rows = db.prepare("PRAGMA integrity_check").all() as Record<string, string>[];
    return rows.map((r) => Object.values(r)[0]).join("; ");
  } finally {
    db.close();
  }
}
