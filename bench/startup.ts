/**
 * The start-up cell of `npm run bench` (`--only startup` for it alone): how long bsched takes to
 * answer its quickest commands, as ratios to a bare `node -e 0` of the same Node binary (goals:
 * `--version` ≤ 1.3×, `list`, `status` and `next` ≤ 2×), beside `restic version` and `npx bsched`.
 * Every round runs every command once, in an order that turns by one each round; a ratio is taken
 * within its round (the machine's load drifts between rounds), and its min, median and max are
 * reported. Times come from GNU time (`/usr/bin/time -f`): wall, and CPU (user + system), which a
 * shared machine disturbs less than wall time.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { median, spawnCollect } from "./measure.ts";

export interface StartupRow {
  label: string;
  /** The goal, as a ratio to `node -e 0` (wall), when there is one. */
  goal?: number;
  wall: number[];
  cpu: number[];
  rssMb: number[];
  /** This row's time over `node -e 0`'s in the same round. */
  wallRatio: number[];
  cpuRatio: number[];
}

export interface StartupResult {
  rounds: number;
  load: [number[], number[]];
  node: string;
  rows: StartupRow[];
}

interface Cmd {
  label: string;
  argv: string[];
  cwd: string;
  goal?: number;
}

async function timed(c: Cmd, report: string): Promise<{ wall: number; cpu: number; rssMb: number }> {
  const r = await spawnCollect("/usr/bin/time", ["-f", "%e %U %S %M", "-o", report, ...c.argv], {
    cwd: c.cwd,
  });
  if (r.code !== 0) throw new Error(`${c.label} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  const [e, u, s, m] =
    (await fs.readFile(report, "utf8")).trim().split("\n").at(-1)?.split(" ").map(Number) ?? [];
  if (e === undefined || u === undefined || s === undefined || m === undefined) {
    throw new Error(`no GNU time report for ${c.label}`);
  }
  return { wall: e, cpu: u + s, rssMb: m / 1024 };
}

/**
 * Measure start-up in `dir` (a scratch folder: a small root with a config and two backups is made
 * there) of the bsched whose entry is `bin`, run by this process's Node.
 */
export async function measureStartup(opts: {
  bin: string;
  /** The project folder `npx bsched` runs in (npx needs a real install, not the bench's copy). */
  project: string;
  dir: string;
  rounds: number;
  log: (s: string) => void;
}): Promise<StartupResult> {
  const root = path.join(opts.dir, "startup");
  await fs.rm(root, { recursive: true, force: true });
  await fs.mkdir(path.join(root, "srv", "Data"), { recursive: true });
  await fs.writeFile(path.join(root, "srv", "Data", "cardholders.csv"), "id,name\n1,Ada\n");
  const node = process.execPath;
  const bsched = async (...args: string[]) => {
    const r = await spawnCollect(node, [opts.bin, ...args], { cwd: root });
    if (r.code !== 0 && r.code !== 3) throw new Error(`bsched ${args.join(" ")}: ${r.stderr}`);
  };
  // A config as `bsched init` writes it (the machine's time zone), and a full and an incremental.
  await bsched("init", "--root", path.join(root, "srv"));
  await bsched("backup", "data");
  await bsched("backup", "data", "--mode", "incremental");
  const cmds: Cmd[] = [
    { label: "node -e 0", argv: [node, "-e", "0"], cwd: root },
    { label: "restic version", argv: ["restic", "version"], cwd: root },
    { label: "bsched --version", argv: [node, opts.bin, "--version"], cwd: root, goal: 1.3 },
    { label: "bsched list", argv: [node, opts.bin, "list"], cwd: root, goal: 2 },
    { label: "bsched status", argv: [node, opts.bin, "status"], cwd: root, goal: 2 },
    { label: "bsched next", argv: [node, opts.bin, "next"], cwd: root, goal: 2 },
    {
      label: "bin/bsched list (sh wrapper)",
      argv: [path.join(path.dirname(opts.bin), "bsched"), "list"],
      cwd: root,
    },
    { label: "npx bsched --version", argv: ["npx", "bsched", "--version"], cwd: opts.project },
  ];
  const load0 = os.loadavg();
  // Warm-up: Node's compile cache, the page cache, npx's own cache folder.
  for (const c of cmds) await timed(c, path.join(opts.dir, "startup-time.txt"));
  const rows: StartupRow[] = cmds.map((c) => ({
    label: c.label,
    ...(c.goal ? { goal: c.goal } : {}),
    wall: [],
    cpu: [],
    rssMb: [],
    wallRatio: [],
    cpuRatio: [],
  }));
  for (let round = 0; round < opts.rounds; round++) {
    const got = new Map<string, { wall: number; cpu: number; rssMb: number }>();
    for (let i = 0; i < cmds.length; i++) {
      const c = cmds[(i + round) % cmds.length] as Cmd;
      got.set(c.label, await timed(c, path.join(opts.dir, "startup-time.txt")));
    }
    const base = got.get("node -e 0") as { wall: number; cpu: number };
    for (const row of rows) {
      const m = got.get(row.label) as { wall: number; cpu: number; rssMb: number };
      row.wall.push(m.wall);
      row.cpu.push(m.cpu);
      row.rssMb.push(m.rssMb);
      // GNU time prints wall seconds to 0.01 s: a 0.00 baseline would divide by nothing.
      row.wallRatio.push(m.wall / Math.max(base.wall, 0.005));
      row.cpuRatio.push(m.cpu / Math.max(base.cpu, 0.005));
    }
    opts.log(`[startup round ${round + 1}/${opts.rounds}] done`);
  }
  await fs.rm(root, { recursive: true, force: true });
  await fs.rm(path.join(opts.dir, "startup-time.txt"), { force: true });
  return { rounds: opts.rounds, load: [load0, os.loadavg()], node: `${process.version} (${node})`, rows };
}

const spread = (xs: number[], digits: number) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;

/** The cell as Markdown: a table with each command's times and its ratios to `node -e 0`. */
export function renderStartup(r: StartupResult): string {
  const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(" ");
  const lines = [
    "## Start-up",
    "",
    `${r.rounds} rounds, each running every command once (the order turning by one each round); ratios are to \`node -e 0\` (node ${r.node}) in the same round: median (min–max). CPU is user + system. Load average ${load(r.load[0])} at start, ${load(r.load[1])} at end.`,
    "",
    "| command | wall s | CPU s | peak RSS MB | wall / node -e 0 | CPU / node -e 0 | goal (wall) |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const row of r.rows) {
    const goal =
      row.goal === undefined
        ? ""
        : `≤ ${row.goal}×: ${median(row.wallRatio) <= row.goal ? "met" : "MISSED"}${median(row.cpuRatio) <= row.goal ? "" : " (CPU: MISSED)"}`;
    lines.push(
      `| ${row.label} | ${spread(row.wall, 3)} | ${spread(row.cpu, 3)} | ${median(row.rssMb).toFixed(0)} | ${spread(row.wallRatio, 2)} | ${spread(row.cpuRatio, 2)} | ${goal} |`,
    );
  }
  return lines.join("\n");
}
