import fs from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { writeFileAtomic } from "../platform/fsutil.ts";

/**
 * The demo server's databases: the four standard sets (docs/design.md "The contract"), as an
 * access-control server keeps them.
 */
export const DEMO_DATABASES = {
  data: "Data/cardholders.db",
  archive: "Archive/events.db",
  inout: "Time/punches.db",
  video: "Video/video-events.db",
} as const;

const FIRST = [
  "Ana",
  "Ben",
  "Chloé",
  "David",
  "Émile",
  "Fatima",
  "Grace",
  "Hugo",
  "Inès",
  "Jonas",
  "Kenji",
  "Léa",
];
const LAST = [
  "Martin",
  "Bernard",
  "Dubois",
  "Nguyen",
  "Silva",
  "Kowalski",
  "Haddad",
  "Smith",
  "Tremblay",
  "Roy",
];
const DOORS = [
  "Main entrance",
  "Lobby",
  "Server room",
  "Warehouse",
  "Parking gate",
  "Lab A",
  "Lab B",
  "Roof",
];
const CAMERAS = ["CAM-01 Lobby", "CAM-02 Parking", "CAM-03 Warehouse", "CAM-04 Server room"];

function pick<T>(xs: readonly T[], i: number): T {
  return xs[i % xs.length] as T;
}

/**
 * Create the demo server root: one SQLite database per set, filled with plausible rows. Data and
 * Video use WAL mode, Archive and Time the rollback journal, so the demo shows both.
 */
export async function createDemoDatabases(root: string): Promise<void> {
  for (const rel of Object.values(DEMO_DATABASES))
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });

  const data = open(path.join(root, DEMO_DATABASES.data), "wal");
  data.exec(`CREATE TABLE cardholders (id INTEGER PRIMARY KEY, name TEXT NOT NULL, card INTEGER UNIQUE NOT NULL,
                                       valid_until TEXT, updated_at TEXT);
             CREATE TABLE doors (id INTEGER PRIMARY KEY, name TEXT NOT NULL, site TEXT NOT NULL);
             CREATE TABLE access (cardholder_id INTEGER REFERENCES cardholders, door_id INTEGER REFERENCES doors);`);
  tx(data, () => {
    const ch = data.prepare(
      "INSERT INTO cardholders (name, card, valid_until, updated_at) VALUES (?, ?, ?, ?)",
    );
    for (let i = 0; i < 240; i++) {
      ch.run(
        `${pick(FIRST, i)} ${pick(LAST, i * 7)}`,
        100_000 + i * 13,
        "2027-12-31",
        new Date().toISOString(),
      );
    }
    const door = data.prepare("INSERT INTO doors (name, site) VALUES (?, ?)");
    for (let i = 0; i < DOORS.length; i++) door.run(pick(DOORS, i), i < 5 ? "Head office" : "Research site");
    const acc = data.prepare("INSERT INTO access (cardholder_id, door_id) VALUES (?, ?)");
    for (let i = 1; i <= 240; i++) for (let d = 1; d <= 1 + (i % 4); d++) acc.run(i, d);
  });
  data.close();

  const archive = open(path.join(root, DEMO_DATABASES.archive), "delete");
  archive.exec(`CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, door TEXT NOT NULL,
                                     card INTEGER, kind TEXT NOT NULL, detail TEXT);
                CREATE INDEX events_at ON events (at);`);
  tx(archive, () => {
    const ev = archive.prepare("INSERT INTO events (at, door, card, kind, detail) VALUES (?, ?, ?, ?, ?)");
    const start = Date.now() - 30 * 86_400_000;
    for (let i = 0; i < 5000; i++) {
      const kind = i % 23 === 0 ? "access denied" : "access granted";
      ev.run(
        new Date(start + i * 518_400).toISOString(),
        pick(DOORS, i * 3),
        100_000 + (i % 240) * 13,
        kind,
        "",
      );
    }
  });
  archive.close();

  const time = open(path.join(root, DEMO_DATABASES.inout), "delete");
  time.exec(`CREATE TABLE punches (id INTEGER PRIMARY KEY, card INTEGER NOT NULL, at TEXT NOT NULL,
                                   direction TEXT NOT NULL CHECK (direction IN ('in', 'out')));`);
  tx(time, () => {
    const p = time.prepare("INSERT INTO punches (card, at, direction) VALUES (?, ?, ?)");
    const start = Date.now() - 14 * 86_400_000;
    for (let i = 0; i < 2000; i++)
      p.run(100_000 + (i % 240) * 13, new Date(start + i * 600_000).toISOString(), i % 2 ? "out" : "in");
  });
  time.close();

  const video = open(path.join(root, DEMO_DATABASES.video), "wal");
  video.exec(`CREATE TABLE video_events (id INTEGER PRIMARY KEY, camera TEXT NOT NULL, at TEXT NOT NULL,
                                         kind TEXT NOT NULL, clip TEXT);`);
  tx(video, () => {
    const v = video.prepare("INSERT INTO video_events (camera, at, kind, clip) VALUES (?, ?, ?, ?)");
    const start = Date.now() - 7 * 86_400_000;
    for (let i = 0; i < 800; i++) {
      v.run(
        pick(CAMERAS, i),
        new Date(start + i * 756_000).toISOString(),
        i % 5 ? "motion" : "door forced",
        `clips/${i}.mp4`,
      );
    }
  });
  video.close();
  await writeFileAtomic(
    path.join(root, "Data", "server.ini"),
    "[server]\nname=Demo access-control server\nport=8801\n",
  );
}

function open(file: string, journal: "wal" | "delete"): DatabaseSync {
  const db = new DatabaseSync(file, { timeout: 10_000 });
  db.exec(`PRAGMA journal_mode=${journal};`);
  return db;
}

function tx(db: DatabaseSync, body: () => void): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    body();
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    throw e;
  }
}

/** The demo's short schedule: seconds between backups of each set. */
export const DEMO_EVERY: Record<string, number> = { data: 30, archive: 20, inout: 25, video: 40 };

/**
 * The demo's restore drill of the data set (issue 14): daily, into a scratch folder of its own under
 * the server root; `bsched demo` also runs one after the first backup and prints its result.
 */
const DEMO_DRILL = `    drill: { frequency: daily, time: "06:00", scratch: drill-scratch }   # restore drills: proven restorable
`;

/**
 * The demo config: the seed's defaults (automatic, default folder, the types and modes the seed's
 * tabs offer), with a short schedule (`frequency: every`) in place of the seed's weekly Sunday
 * 04:00 so that the daemon shows backups within seconds, and a keep policy so the demo's folder
 * does not grow without end (the incremental sets make a full every 5th backup, so whole old
 * chains fall outside `keep` and go).
 */
export function demoConfigText(timezone: string): string {
  const set = (id: string, letter: string, source: string, type: string, mode: string) => `  ${id}:
    letter: ${letter}
    source: ${source}
    automatic: true
    folder: default
    type: ${type}
    mode: ${mode}${mode === "incremental" ? "\n    fullEvery: 5            # every 5th backup is a full: chains stay short, keep can delete old ones" : ""}
    frequency: every        # the seed's default: frequency: weekly, day: sunday, time: "04:00"
    every: ${DEMO_EVERY[id]}s
    keep: { last: 20 }
${id === "data" ? DEMO_DRILL : ""}`;
  return `# bsched demo configuration, written by \`bsched demo\` (see README "Try it: bsched demo").
# \`bsched demo\` runs the scheduler daemon on this file; \`bsched daemon --config THIS_FILE\` does too.
server:
  root: server
  backupFolder: Backup
  timezone: ${timezone}
sets:
${set("data", "D", "Data", "separate", "full")}${set("archive", "A", "Archive", "separate", "incremental")}${set("inout", "T", "Time", "separate", "incremental")}${set("video", "V", "Video", "compressed", "full")}`;
}
