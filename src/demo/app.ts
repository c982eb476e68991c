// The demo's stand-in for the access-control server: a separate process that keeps writing to
// the demo databases as the real server would (card swipes, punches, video events, an edited
// cardholder now and then). Run by `bsched demo`; stops on SIGTERM or SIGINT.
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { DEMO_DATABASES } from "./seed.ts";

const root = process.argv[2] as string;
const TICK_MS = 250;
const open = (rel: string) => new DatabaseSync(path.join(root, rel), { timeout: 30_000 });
const data = open(DEMO_DATABASES.data);
const archive = open(DEMO_DATABASES.archive);
const time = open(DEMO_DATABASES.inout);
const video = open(DEMO_DATABASES.video);

const swipe = archive.prepare("INSERT INTO events (at, door, card, kind, detail) VALUES (?, ?, ?, ?, '')");
const punch = time.prepare("INSERT INTO punches (card, at, direction) VALUES (?, ?, ?)");
const cam = video.prepare("INSERT INTO video_events (camera, at, kind, clip) VALUES (?, ?, ?, ?)");
const edit = data.prepare("UPDATE cardholders SET valid_until = ?, updated_at = ? WHERE id = ?");
const DOORS = ["Main entrance", "Lobby", "Server room", "Warehouse", "Parking gate"];

let n = 0;
const timer = setInterval(() => {
  n++;
  const at = new Date().toISOString();
  const card = 100_000 + (n % 240) * 13;
  swipe.run(at, DOORS[n % DOORS.length] as string, card, n % 17 === 0 ? "access denied" : "access granted");
  if (n % 3 === 0) punch.run(card, at, n % 2 ? "out" : "in");
  if (n % 5 === 0) cam.run("CAM-01 Lobby", at, "motion", `clips/live-${n}.mp4`);
  if (n % 20 === 0) edit.run("2028-06-30", at, 1 + (n % 240));
}, TICK_MS);

function stop(): void {
  clearInterval(timer);
  for (const db of [data, archive, time, video]) db.close();
  process.stderr.write(`demo server: stopped after ${n} rounds of events\n`);
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
