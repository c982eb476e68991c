import { createHash } from "node:crypto";
import { constants as C } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { run } from "./measure.ts";

// ---------------------------------------------------------------------------------------------
// Seeded randomness: the datasets and their 1 % change are the same bytes on every run.

export type Rng = () => number;

/** mulberry32: small, fast, and good enough to make data look varied. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
/** Skewed pick: the first items come up far more often, as in real data. */
const pickSkew = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * r() * xs.length)] as T;
const hex = (r: Rng, n: number) => {
  let s = "";
  for (let i = 0; i < n; i++) s += "0123456789abcdef"[Math.floor(r() * 16)];
  return s;
};

const FIRST = [
  "Anna",
  "Louis",
  "Marie",
  "Jean",
  "Sofia",
  "Lucas",
  "Emma",
  "Hugo",
  "Chloé",
  "Nathan",
  "Léa",
  "Paul",
  "Inès",
  "Arthur",
  "Camille",
  "Jules",
  "Sarah",
  "Adam",
  "Julie",
  "Mohamed",
  "Laura",
  "Thomas",
  "Clara",
  "Nicolas",
  "Manon",
  "Pierre",
  "Alice",
  "Karim",
  "Eva",
  "Antoine",
  "Yasmine",
  "Victor",
  "Zoé",
  "Maxime",
];
const LAST = [
  "Martin",
  "Bernard",
  "Dubois",
  "Thomas",
  "Robert",
  "Richard",
  "Petit",
  "Durand",
  "Leroy",
  "Moreau",
  "Simon",
  "Laurent",
  "Lefebvre",
  "Michel",
  "Garcia",
  "David",
  "Bertrand",
  "Roux",
  "Vincent",
  "Fournier",
  "Morel",
  "Girard",
  "André",
  "Mercier",
  "Dupont",
  "Lambert",
  "Bonnet",
  "François",
  "Martinez",
  "Nguyen",
];
const DEPTS = [
  "Maintenance",
  "Security",
  "Accounting",
  "Logistics",
  "Production line 1",
  "Production line 2",
  "Research",
  "Human resources",
  "Reception",
  "IT",
  "Cleaning (contractor)",
  "Management",
  "Warehouse",
];
const DOORS = Array.from({ length: 64 }, (_, i) =>
  i < 8 ? `Main entrance ${i + 1}` : i < 20 ? `Building B floor ${i - 7}` : `Door ${i + 1}`,
);
const RESULTS = [
  "Access granted",
  "Access granted",
  "Access granted",
  "Access granted",
  "Access denied: badge expired",
  "Access denied: outside schedule",
  "Access denied: unknown badge",
  "Door forced open",
  "Door held open too long",
  "Anti-passback violation",
];
const CAMS = Array.from({ length: 40 }, (_, i) => `CAM-${String(i + 1).padStart(3, "0")}`);
const VEVENTS = ["motion", "line-crossing", "tamper", "video-loss", "intrusion", "face-match", "plate-read"];
const LEVELS = ["INFO", "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR"];
const MODULES = ["door-controller", "event-archiver", "scheduler", "video-gateway", "api", "replicator"];
const NOTES = [
  "",
  "",
  "",
  "temporary badge",
  "visitor escorted",
  "badge replaced after loss",
  "night shift",
  "contractor: access limited to the warehouse",
  "parking access included",
];

const BASE_TS = Date.UTC(2024, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

/** Bytes a little compressible, like a small JPEG thumbnail. */
function blob(r: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  let v = int(r, 0, 255);
  for (let i = 0; i < n; i++) {
    v = (v + int(r, -6, 6)) & 0xff;
    b[i] = r() < 0.6 ? v : Math.floor(r() * 256);
  }
  return b;
}

type Row = (string | number | Uint8Array | null)[];

/** Insert rows from `row(i)` until the database file reaches `bytes`. */
function fillTable(db: DatabaseSync, insert: string, bytes: number, row: (i: number) => Row): number {
  const stmt = db.prepare(insert);
  const pageSize = Number((db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size);
  const pages = () => Number((db.prepare("PRAGMA page_count").get() as { page_count: number }).page_count);
  let i = 0;
  while (pages() * pageSize < bytes) {
    db.exec("BEGIN");
    for (let k = 0; k < 1000; k++) stmt.run(...row(i++));
    db.exec("COMMIT");
  }
  return i;
}

function openNew(file: string): DatabaseSync {
  const db = new DatabaseSync(file);
  db.exec("PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF;");
  return db;
}

async function makeCardholders(file: string, bytes: number, r: Rng): Promise<void> {
  const db = openNew(file);
  db.exec(`CREATE TABLE cardholders(id INTEGER PRIMARY KEY, badge TEXT NOT NULL, first_name TEXT, last_name TEXT,
    department TEXT, email TEXT, phone TEXT, valid_from TEXT, valid_to TEXT, notes TEXT, photo BLOB);
    CREATE UNIQUE INDEX cardholders_badge ON cardholders(badge);
    CREATE TABLE access_rights(cardholder_id INTEGER, door TEXT, schedule TEXT);`);
  fillTable(db, "INSERT INTO cardholders VALUES (?,?,?,?,?,?,?,?,?,?,?)", bytes * 0.85, (i) => {
    const f = pick(r, FIRST);
    const l = pick(r, LAST);
    const from = BASE_TS - int(r, 0, 2000) * 86400000;
    return [
      i + 1,
      `B${String(100000 + i)}`,
      f,
      l,
      pickSkew(r, DEPTS),
      `${f}.${l}@example.com`.toLowerCase(),
      `+33 1 ${int(r, 10, 99)} ${int(r, 10, 99)} ${int(r, 10, 99)} ${int(r, 10, 99)}`,
      iso(from).slice(0, 10),
      iso(from + int(r, 30, 3000) * 86400000).slice(0, 10),
      pick(r, NOTES),
      blob(r, int(r, 100, 400)),
    ];
  });
  fillTable(db, "INSERT INTO access_rights VALUES (?,?,?)", bytes, (i) => [
    (i % 50000) + 1,
    pickSkew(r, DOORS),
    pick(r, ["24/7", "Office hours", "Night shift", "Weekdays 06:00-22:00"]),
  ]);
  db.close();
}

async function makeEvents(file: string, bytes: number, r: Rng, startMs: number): Promise<void> {
  const db = openNew(file);
  db.exec(`CREATE TABLE events(id INTEGER PRIMARY KEY, ts TEXT NOT NULL, door TEXT, reader TEXT,
    cardholder_id INTEGER, badge TEXT, result TEXT, message TEXT);
    CREATE INDEX events_ts ON events(ts);`);
  let t = startMs;
  fillTable(db, "INSERT INTO events VALUES (?,?,?,?,?,?,?,?)", bytes, (i) => {
    t += int(r, 50, 20000);
    const ch = int(r, 1, 50000);
    const door = pickSkew(r, DOORS);
    const res = pick(r, RESULTS);
    return [
      i + 1,
      iso(t),
      door,
      `RDR-${hex(r, 4)}`,
      ch,
      `B${100000 + ch}`,
      res,
      `${res} at ${door} for badge B${100000 + ch} (controller ${int(r, 1, 12)}, session ${hex(r, 8)})`,
    ];
  });
  db.close();
}

async function makePunches(file: string, bytes: number, r: Rng): Promise<void> {
  const db = openNew(file);
  db.exec(`CREATE TABLE punches(id INTEGER PRIMARY KEY, cardholder_id INTEGER, ts TEXT, direction TEXT,
    terminal TEXT, workcode INTEGER, note TEXT);
    CREATE INDEX punches_holder ON punches(cardholder_id, ts);`);
  let t = BASE_TS;
  fillTable(db, "INSERT INTO punches VALUES (?,?,?,?,?,?,?)", bytes, (i) => {
    t += int(r, 100, 30000);
    return [
      i + 1,
      int(r, 1, 50000),
      iso(t),
      i % 2 === 0 ? "IN" : "OUT",
      `TERM-${int(r, 1, 30)}`,
      pickSkew(r, [0, 0, 0, 1, 2, 3, 10, 11]),
      pick(r, NOTES),
    ];
  });
  db.close();
}

async function makeVideo(file: string, bytes: number, r: Rng): Promise<void> {
  const db = openNew(file);
  db.exec(`CREATE TABLE video_events(id INTEGER PRIMARY KEY, camera TEXT, ts TEXT, kind TEXT, clip_path TEXT,
    duration_ms INTEGER, metadata TEXT, thumbnail BLOB);
    CREATE INDEX video_ts ON video_events(ts);`);
  let t = BASE_TS;
  fillTable(db, "INSERT INTO video_events VALUES (?,?,?,?,?,?,?,?)", bytes, (i) => {
    t += int(r, 200, 60000);
    const cam = pickSkew(r, CAMS);
    const kind = pick(r, VEVENTS);
    const ts = iso(t);
    return [
      i + 1,
      cam,
      ts,
      kind,
      `/video/${cam}/${ts.slice(0, 10)}/${ts.slice(11, 19).replaceAll(":", "")}_${kind}.mp4`,
      int(r, 2000, 60000),
      JSON.stringify({
        confidence: Math.round(r() * 1000) / 1000,
        zone: `zone-${int(r, 1, 8)}`,
        operator: r() < 0.2 ? pick(r, LAST) : null,
        ack: r() < 0.5,
      }),
      r() < 0.5 ? blob(r, int(r, 100, 400)) : null,
    ];
  });
  db.close();
}

async function makeSettings(file: string, bytes: number, r: Rng): Promise<void> {
  const db = openNew(file);
  db.exec(`CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT);
    CREATE TABLE doors(id INTEGER PRIMARY KEY, name TEXT, controller TEXT, schedule TEXT, options TEXT);`);
  fillTable(db, "INSERT INTO doors VALUES (?,?,?,?,?)", bytes, (i) => [
    i + 1,
    `${pick(r, DOORS)} #${i}`,
    `CTRL-${int(r, 1, 12)}`,
    pick(r, ["24/7", "Office hours", "Night shift"]),
    JSON.stringify({ relockMs: int(r, 1000, 8000), heldOpenAlarmS: int(r, 10, 120), apb: r() < 0.3 }),
  ]);
  db.close();
}

/** Append-style text log lines until `bytes`. */
async function makeLog(file: string, bytes: number, r: Rng, json: boolean, startMs = BASE_TS): Promise<void> {
  const fh = await fs.open(file, "a");
  let t = startMs;
  let written = (await fh.stat()).size;
  const target = written + bytes;
  while (written < target) {
    const lines: string[] = [];
    for (let k = 0; k < 2000; k++) {
      t += int(r, 1, 4000);
      const mod = pick(r, MODULES);
      if (json) {
        lines.push(
          JSON.stringify({
            ts: iso(t),
            user: pick(r, ["admin", "operator1", "operator2", "system", "hr-sync"]),
            action: pick(r, [
              "cardholder.update",
              "door.unlock",
              "schedule.edit",
              "login",
              "export",
              "badge.print",
            ]),
            target: `B${int(r, 100000, 150000)}`,
            ip: `10.${int(r, 0, 3)}.${int(r, 0, 255)}.${int(r, 1, 254)}`,
            req: hex(r, 12),
          }),
        );
      } else {
        lines.push(
          `${iso(t)} ${pick(r, LEVELS)} [${mod}-${int(r, 1, 12)}] ${pick(r, RESULTS).toLowerCase()} ` +
            `door="${pickSkew(r, DOORS)}" badge=B${int(r, 100000, 150000)} latency=${int(r, 1, 250)}ms req=${hex(r, 10)}`,
        );
      }
    }
    const chunk = `${lines.join("\n")}\n`;
    await fh.write(chunk);
    written += Buffer.byteLength(chunk);
  }
  await fh.close();
}

/** A binary write-ahead-log-like file: framed records with headers, checksums and row images. */
async function makeWal(file: string, bytes: number, r: Rng): Promise<void> {
  const fh = await fs.open(file, "a");
  let written = 0;
  let lsn = 1;
  while (written < bytes) {
    const chunk = Buffer.alloc(1 << 20);
    let off = 0;
    while (off < chunk.length - 600) {
      const body = Buffer.from(
        `${iso(BASE_TS + lsn * 997)}|events|INSERT|${int(r, 1, 50000)}|${pick(r, RESULTS)}|${pickSkew(r, DOORS)}`,
      );
      chunk.writeUInt32LE(0x57414c31, off);
      chunk.writeUInt32LE(lsn++, off + 4);
      chunk.writeUInt16LE(body.length, off + 8);
      body.copy(chunk, off + 12);
      off += 12 + body.length;
      const pad = blob(r, int(r, 20, 80));
      chunk.set(pad, off);
      off += pad.length + (8 - ((off + pad.length) % 8));
    }
    await fh.write(chunk);
    written += chunk.length;
  }
  await fh.close();
}

async function makeCsv(file: string, bytes: number, r: Rng): Promise<void> {
  const fh = await fs.open(file, "w");
  await fh.write("employee_id;badge;name;department;date;first_in;last_out;hours;overtime\n");
  let written = 0;
  let day = 0;
  while (written < bytes) {
    const lines: string[] = [];
    for (let k = 0; k < 2000; k++) {
      const id = int(r, 1, 50000);
      const inM = int(r, 6 * 60, 10 * 60);
      const outM = inM + int(r, 4 * 60, 10 * 60);
      lines.push(
        `${id};B${100000 + id};${pick(r, LAST)} ${pick(r, FIRST)};${pickSkew(r, DEPTS)};` +
          `${iso(BASE_TS + Math.floor(day++ / 400) * 86400000).slice(0, 10)};` +
          `${String(Math.floor(inM / 60)).padStart(2, "0")}:${String(inM % 60).padStart(2, "0")};` +
          `${String(Math.floor(outM / 60)).padStart(2, "0")}:${String(outM % 60).padStart(2, "0")};` +
          `${((outM - inM) / 60).toFixed(2)};${Math.max(0, (outM - inM) / 60 - 8).toFixed(2)}`,
      );
    }
    const chunk = `${lines.join("\n")}\n`;
    await fh.write(chunk);
    written += Buffer.byteLength(chunk);
  }
  await fh.close();
}

const MB = 1_000_000;

/** Dataset A: a dozen database-like files; `scale` 1 ≈ 1.08 GB. */
export async function generateA(root: string, scale: number, seed = 20240601): Promise<void> {
  for (const d of ["Data", "Archive", "Time", "Video", "Logs"])
    await fs.mkdir(path.join(root, d), { recursive: true });
  const s = (mb: number) => Math.max(64 * 1024, Math.round(mb * MB * scale));
  const f = (p: string) => path.join(root, p);
  const jobs: [string, (file: string, r: Rng) => Promise<void>][] = [
    ["Data/cardholders.db", (x, r) => makeCardholders(x, s(110), r)],
    ["Data/settings.db", (x, r) => makeSettings(x, s(4), r)],
    ["Archive/events_2024.db", (x, r) => makeEvents(x, s(90), r, BASE_TS)],
    ["Archive/events_2025.db", (x, r) => makeEvents(x, s(260), r, Date.UTC(2025, 0, 1))],
    ["Archive/events_2026.db", (x, r) => makeEvents(x, s(130), r, Date.UTC(2026, 0, 1))],
    ["Time/punches.db", (x, r) => makePunches(x, s(110), r)],
    ["Time/payroll_export.csv", (x, r) => makeCsv(x, s(30), r)],
    ["Video/video_events.db", (x, r) => makeVideo(x, s(140), r)],
    ["Video/camera_index.db", (x, r) => makeVideo(x, s(10), r)],
    ["Logs/server.log", (x, r) => makeLog(x, s(120), r, false)],
    ["Logs/audit.log", (x, r) => makeLog(x, s(60), r, true)],
    ["Logs/replication.wal", (x, r) => makeWal(x, s(40), r)],
  ];
  let n = 0;
  for (const [p, make] of jobs) await make(f(p), rng(seed + n++));
}

/** The deterministic ~1 % change of dataset A: modified, appended, deleted and added files. */
export async function changeA(root: string, scale: number, seed = 777): Promise<void> {
  const r = rng(seed);
  const f = (p: string) => path.join(root, p);
  // Modified in place: scattered updates of about 1 % of the cardholders, new punches.
  const db = new DatabaseSync(f("Data/cardholders.db"));
  db.exec("PRAGMA journal_mode=DELETE");
  db.exec("BEGIN");
  const upd = db.prepare("UPDATE cardholders SET department = ?, notes = ?, valid_to = ? WHERE id = ?");
  const max = Number((db.prepare("SELECT max(id) AS m FROM cardholders").get() as { m: number }).m);
  for (let i = 0; i < max / 100; i++)
    upd.run(pick(r, DEPTS), "updated by HR sync", "2027-12-31", int(r, 1, max));
  db.exec("COMMIT");
  db.close();
  const pdb = new DatabaseSync(f("Time/punches.db"));
  pdb.exec("PRAGMA journal_mode=DELETE");
  pdb.exec("BEGIN");
  const ins = pdb.prepare(
    "INSERT INTO punches(cardholder_id, ts, direction, terminal, workcode, note) VALUES (?,?,?,?,?,?)",
  );
  const rows = Math.round(40000 * scale);
  for (let i = 0; i < rows; i++)
    ins.run(
      int(r, 1, 50000),
      iso(Date.UTC(2027, 0, 1) + i * 5000),
      i % 2 ? "OUT" : "IN",
      `TERM-${int(r, 1, 30)}`,
      0,
      "",
    );
  pdb.exec("COMMIT");
  pdb.close();
  // Appended.
  await makeLog(f("Logs/server.log"), Math.round(4 * MB * scale), r, false, Date.UTC(2027, 0, 1));
  await makeLog(f("Logs/audit.log"), Math.round(2 * MB * scale), r, true, Date.UTC(2027, 0, 1));
  // Deleted and added.
  await fs.rm(f("Video/camera_index.db"));
  await makeWal(f("Logs/replication-2.wal"), Math.round(3 * MB * scale), r);
}

// ---------------------------------------------------------------------------------------------
// Dataset B: an installed npm tree (pinned in bench/dataset-b/), written by nobody here.

const DATASET_B_SPEC = path.join(path.dirname(fileURLToPath(import.meta.url)), "dataset-b");

/** `npm ci --ignore-scripts` of bench/dataset-b into `installDir` (skipped when already done for this lock). */
export async function installB(installDir: string): Promise<string> {
  const lock = await fs.readFile(path.join(DATASET_B_SPEC, "package-lock.json"));
  const stamp = createHash("sha256").update(lock).digest("hex");
  const stampFile = path.join(installDir, ".bench-stamp");
  const done = await fs.readFile(stampFile, "utf8").catch(() => "");
  const nm = path.join(installDir, "node_modules");
  if (done === stamp) return nm;
  await fs.rm(installDir, { recursive: true, force: true });
  await fs.mkdir(installDir, { recursive: true });
  for (const f of ["package.json", "package-lock.json"])
    await fs.copyFile(path.join(DATASET_B_SPEC, f), path.join(installDir, f));
  await run("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: installDir,
  });
  await fs.writeFile(stampFile, stamp);
  return nm;
}

/** Copy the installed tree (all of it, or its first packages up to `maxFiles` files) into `dest`. */
export async function buildB(nodeModules: string, dest: string, maxFiles: number | undefined): Promise<void> {
  if (maxFiles === undefined) {
    await run("cp", ["-a", nodeModules, dest]);
    return;
  }
  await fs.mkdir(dest, { recursive: true });
  let files = 0;
  for (const name of (await fs.readdir(nodeModules)).sort()) {
    if (files >= maxFiles) break;
    if (name.startsWith(".")) continue;
    const src = path.join(nodeModules, name);
    await run("cp", ["-a", src, path.join(dest, name)]);
    files += (await listTree(src)).files.length;
  }
}

/** The deterministic ~1 % change of dataset B: files modified, appended, deleted and added. */
export async function changeB(root: string, seed = 4242): Promise<void> {
  const r = rng(seed);
  const { files } = await listTree(root);
  const order = files.map((f) => f.path);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j] as string, order[i] as string];
  }
  const n = order.length;
  const take = (k: number) => order.splice(0, Math.max(1, Math.round(n * k)));
  for (const p of take(0.004)) {
    // Modified in place (same size): a few bytes overwritten in the middle.
    const fh = await fs.open(path.join(root, p), C.O_RDWR);
    const size = (await fh.stat()).size;
    if (size > 0)
      await fh.write(Buffer.from("#bench#").subarray(0, size), 0, Math.min(7, size), Math.floor(size / 2));
    await fh.close();
  }
  for (const p of take(0.003))
    await fs.appendFile(path.join(root, p), `\n/* bench: appended ${hex(r, 16)} */\n`);
  for (const p of take(0.0015)) await fs.rm(path.join(root, p));
  const added = Math.max(1, Math.round(n * 0.0015));
  await fs.mkdir(path.join(root, ".bench-added"), { recursive: true });
  for (let i = 0; i < added; i++) {
    const where = i % 2 === 0 ? ".bench-added" : path.dirname(order[i] as string);
    const body =
      `// added by the bench (${i})\nexport const value${i} = ${JSON.stringify(hex(r, 64))};\n`.repeat(
        int(r, 1, 40),
      );
    await fs.writeFile(path.join(root, where, `bench-added-${i}.js`), body);
  }
}

// ---------------------------------------------------------------------------------------------
// Tree helpers: listing, warming, hashing and comparing.

export interface TreeFile {
  path: string;
  size: number;
  ino: bigint;
}

/** Every regular file (and counts) under `root`, without following symlinks. */
export async function listTree(root: string): Promise<{ files: TreeFile[]; dirs: number; symlinks: number }> {
  const files: TreeFile[] = [];
  let dirs = 0;
  let symlinks = 0;
  const walk = async (rel: string) => {
    const ents = await fs.readdir(path.join(root, rel), { withFileTypes: true });
    for (const d of ents) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) {
        dirs++;
        await walk(r);
      } else if (d.isSymbolicLink()) symlinks++;
      else if (d.isFile()) {
        const st = await fs.lstat(path.join(root, r), { bigint: true });
        files.push({ path: r, size: Number(st.size), ino: st.ino });
      }
    }
  };
  await walk("");
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, dirs, symlinks };
}

/** Bytes of the regular files under the roots, each hard-linked file counted once (like du). */
export async function storedBytes(roots: string[]): Promise<number> {
  const seen = new Set<bigint>();
  let total = 0;
  for (const root of roots) {
    const exists = await fs.stat(root).catch(() => undefined);
    if (!exists) continue;
    for (const f of (await listTree(root)).files) {
      if (seen.has(f.ino)) continue;
      seen.add(f.ino);
      total += f.size;
    }
  }
  return total;
}

async function forEachLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const CHUNK = 1 << 20;

async function readAll(file: string, onChunk?: (b: Buffer) => void): Promise<void> {
  const fh = await fs.open(file, C.O_RDONLY | C.O_NOFOLLOW);
  const buf = Buffer.allocUnsafe(CHUNK);
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      onChunk?.(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}

/** Read every file under `roots` once, so that the timed run finds them in the page cache. */
export async function warm(roots: string[]): Promise<void> {
  for (const root of roots) {
    const { files } = await listTree(root);
    await forEachLimit(files, 8, (f) => readAll(path.join(root, f.path)));
  }
}

export interface Rec {
  kind: "file" | "dir" | "symlink" | "other";
  mode: number;
  size?: number;
  sha256?: string;
  target?: string;
}

/**
 * What a restore must bring back, per relative path: kind, mode bits, content hash (streamed),
 * link target; less the marker bsched's restore leaves at the top (`.bsched-restored`).
 */
export async function snapshot(root: string): Promise<Map<string, Rec>> {
  const out = new Map<string, Rec>();
  const files: string[] = [];
  const walk = async (rel: string) => {
    for (const d of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
      if (!rel && d.name === ".bsched-restored") continue;
      const r = rel ? `${rel}/${d.name}` : d.name;
      const abs = path.join(root, r);
      const st = await fs.lstat(abs);
      const kind = st.isFile()
        ? "file"
        : st.isDirectory()
          ? "dir"
          : st.isSymbolicLink()
            ? "symlink"
            : "other";
      const rec: Rec = { kind, mode: kind === "symlink" ? 0 : st.mode & 0o7777 };
      if (kind === "file") {
        rec.size = st.size;
        files.push(r);
      }
      if (kind === "symlink") rec.target = await fs.readlink(abs);
      out.set(r, rec);
      if (kind === "dir") await walk(r);
    }
  };
  await walk("");
  await forEachLimit(files, 8, async (r) => {
    const h = createHash("sha256");
    let first = true;
    await readAll(path.join(root, r), (b) => {
      h.update(first ? sqliteNeutral(b) : b);
      first = false;
    });
    (out.get(r) as Rec).sha256 = h.digest("hex");
  });
  return out;
}

const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");
/** Header fields SQLite's online backup rewrites: change counter, schema cookie, version-valid-for and library version. */
const SQLITE_VOLATILE: [number, number][] = [
  [24, 28],
  [40, 44],
  [92, 100],
];

/**
 * The first chunk of a file, with the header fields that a copy made by SQLite's online backup
 * may legitimately change zeroed (the pages must still match byte for byte).
 */
export function sqliteNeutral(first: Buffer): Buffer {
  if (first.length < 100 || !first.subarray(0, 16).equals(SQLITE_MAGIC)) return first;
  const b = Buffer.from(first);
  for (const [a, z] of SQLITE_VOLATILE) b.fill(0, a, z);
  return b;
}

/** The differences (first `limit`) between an expected and an actual snapshot; empty when equal. */
export function diffSnapshots(expected: Map<string, Rec>, actual: Map<string, Rec>, limit = 20): string[] {
  const diffs: string[] = [];
  for (const [p, e] of expected) {
    const a = actual.get(p);
    if (!a) diffs.push(`missing: ${p}`);
    else if (a.kind !== e.kind || a.mode !== e.mode || a.sha256 !== e.sha256 || a.target !== e.target)
      diffs.push(`differs: ${p}: expected ${JSON.stringify(e)}, got ${JSON.stringify(a)}`);
    if (diffs.length >= limit) return diffs;
  }
  for (const p of actual.keys()) {
    if (!expected.has(p)) diffs.push(`extra: ${p}`);
    if (diffs.length >= limit) break;
  }
  return diffs;
}
