/**
 * Block incrementals (issue 13): what a restore of a long chain of daily block incrementals
 * costs beside a restore of one full. Dataset A (bench/datasets.ts) at `--scale`, a full, then
 * `--days` daily changes (1 % of the cardholders updated, punches inserted, logs appended) each
 * backed up as an incremental; then the newest state restored from that chain, and the same
 * state restored from a full made of it, alternated `--runs` times. Not part of the tests.
 * `npm run bench:blocks [-- --scale 0.25] [--days 30] [--type separate|compressed] [--runs 2] [--keep]
 * [--reuse]`: `--keep` leaves the chain and the full in `--dir`, `--reuse` measures the restores of
 * the ones a `--keep` run left (same scale, days and type) without making them again.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { diffSnapshots, generateA, snapshot, storedBytes } from "./datasets.ts";
import { measure, run } from "./measure.ts";
import { argvOf, type Ctx, writeConfig } from "./tools.ts";

const { values: args } = parseArgs({
  options: {
    dir: { type: "string", default: path.join(os.tmpdir(), "bsched-bench-blocks") },
    scale: { type: "string", default: "0.25" },
    days: { type: "string", default: "30" },
    type: { type: "string", default: "separate" },
    runs: { type: "string", default: "2" },
    keep: { type: "boolean", default: false },
    reuse: { type: "boolean", default: false },
  },
});
const dir = path.resolve(args.dir as string);
const scale = Number(args.scale);
const days = Number(args.days);
const type = args.type as "separate" | "compressed";
const log = (s: string) => process.stderr.write(`${s}\n`);

/** One day's change: 1 % of the cardholders updated in place, new punches, log lines appended. */
async function dayChange(root: string, day: number): Promise<void> {
  const db = new DatabaseSync(path.join(root, "Data/cardholders.db"));
  const max = Number((db.prepare("SELECT max(id) AS m FROM cardholders").get() as { m: number }).m);
  db.exec("BEGIN");
  const upd = db.prepare("UPDATE cardholders SET notes = ? WHERE id = ?");
  for (let i = 0; i < max / 100; i++) upd.run(`day ${day}`, 1 + ((i * 7919 + day * 104729) % max));
  db.exec("COMMIT");
  db.close();
  const p = new DatabaseSync(path.join(root, "Time/punches.db"));
  p.exec("BEGIN");
  const ins = p.prepare(
    "INSERT INTO punches(cardholder_id, ts, direction, terminal, workcode, note) VALUES (?,?,?,?,?,?)",
  );
  for (let i = 0; i < Math.round(4000 * scale); i++)
    ins.run(
      1 + ((i * 31 + day) % 50000),
      `2027-02-${String(1 + (day % 28)).padStart(2, "0")}T00:00:${i}`,
      i % 2 ? "OUT" : "IN",
      "TERM-1",
      0,
      "",
    );
  p.exec("COMMIT");
  p.close();
  await fs.appendFile(
    path.join(root, "Logs/server.log"),
    `day ${day} ${"x".repeat(200)}\n`.repeat(Math.round(2000 * scale)),
  );
}

/** A full and `days` daily incrementals of dataset A (the chain), and a full of the last state. */
async function makeChains(
  pristine: string,
  data: string,
  chain: Ctx,
  full: Ctx,
): Promise<{ fullBytes: number; chainBytes: number; incSeconds: number }> {
  await fs.rm(path.join(dir, "chain.stamp"), { force: true });
  await fs.rm(path.join(dir, "chain"), { recursive: true, force: true });
  await fs.rm(path.join(dir, "full"), { recursive: true, force: true });
  await run("rsync", ["-a", "--delete", `${pristine}/`, `${data}/`]);
  await writeConfig(chain, type);
  await writeConfig(full, type);
  const bsched = async (c: Ctx, a: string[]) => {
    const argv = argvOf(c, a);
    await run(argv[0] as string, argv.slice(1));
  };
  await bsched(chain, ["backup", "bench", "--mode", "full"]);
  const fullBytes = await storedBytes([path.join(chain.store, "backups")]);
  let incSeconds = 0;
  for (let day = 1; day <= days; day++) {
    await dayChange(data, day);
    const before = await storedBytes([path.join(chain.store, "backups")]);
    const m = await measure(
      { kind: "exec", argv: argvOf(chain, ["backup", "bench", "--mode", "incremental"]) },
      { tmp: dir },
    );
    incSeconds += m.seconds;
    const after = await storedBytes([path.join(chain.store, "backups")]);
    log(
      `day ${day}: incremental ${m.seconds.toFixed(2)} s, stored ${((after - before) / 1e6).toFixed(1)} MB`,
    );
  }
  const chainBytes = (await storedBytes([path.join(chain.store, "backups")])) - fullBytes;
  await bsched(full, ["backup", "bench", "--mode", "full"]);
  return { fullBytes, chainBytes, incSeconds };
}

async function main(): Promise<void> {
  const load0 = os.loadavg();
  const pristine = path.join(dir, `pristine-${scale}`);
  if (!(await fs.stat(`${pristine}.stamp`).catch(() => undefined))) {
    await fs.rm(pristine, { recursive: true, force: true });
    await generateA(pristine, scale);
    await fs.writeFile(`${pristine}.stamp`, `A v1 scale ${scale}`);
  }
  const data = path.join(dir, "data");
  const chain: Ctx = { source: data, store: path.join(dir, "chain") };
  const full: Ctx = { source: data, store: path.join(dir, "full") };
  // What a --keep run left: the chain's figures, for a --reuse run of the same shape.
  const stampFile = path.join(dir, "chain.stamp");
  const shape = `${scale} ${days} ${type}`;
  const kept = args.reuse
    ? await fs
        .readFile(stampFile, "utf8")
        .then(
          (t) =>
            JSON.parse(t) as { shape: string; fullBytes: number; chainBytes: number; incSeconds: number },
        )
        .catch(() => undefined)
    : undefined;
  if (args.reuse && kept?.shape !== shape) throw new Error(`--reuse: no chain of ${shape} kept in ${dir}`);
  const made = kept ?? (await makeChains(pristine, data, chain, full));
  if (args.keep) await fs.writeFile(stampFile, JSON.stringify({ shape, ...made }));
  const { fullBytes, chainBytes, incSeconds } = made;
  const expected = await snapshot(data);
  const times: Record<string, number[]> = { chain: [], full: [] };
  const rss: Record<string, number[]> = { chain: [], full: [] };
  for (let r = 0; r < Number(args.runs); r++) {
    for (const [label, c] of (r % 2
      ? [
          ["full", full],
          ["chain", chain],
        ]
      : [
          ["chain", chain],
          ["full", full],
        ]) as [string, Ctx][]) {
      const target = path.join(dir, `restore-${label}`);
      await fs.rm(target, { recursive: true, force: true });
      const m = await measure(
        { kind: "exec", argv: argvOf(c, ["restore", "bench", "--to", target]) },
        { tmp: dir },
      );
      const diffs = diffSnapshots(expected as Map<string, never>, await snapshot(target));
      if (diffs.length > 0) throw new Error(`RESTORE DIFFERS (${label}):\n  ${diffs.join("\n  ")}`);
      times[label]?.push(m.seconds);
      rss[label]?.push(m.peakRssMb);
      log(`restore from ${label}: ${m.seconds.toFixed(2)} s, ${m.peakRssMb.toFixed(0)} MB`);
      await fs.rm(target, { recursive: true, force: true });
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const load1 = os.loadavg();
  process.stdout.write(
    [
      `dataset A at scale ${scale} (${(fullBytes / 1e6).toFixed(0)} MB full), ${type}, ${days} daily block incrementals`,
      `- the ${days} incrementals stored ${(chainBytes / 1e6).toFixed(1)} MB in all, ${(incSeconds / days).toFixed(2)} s each on average`,
      `- restore of the newest state from the chain: ${med(times.chain as number[]).toFixed(2)} s (runs ${times.chain?.map((x) => x.toFixed(2)).join(", ")}), peak RSS ${med(rss.chain as number[]).toFixed(0)} MB`,
      `- restore of the same state from a full: ${med(times.full as number[]).toFixed(2)} s (runs ${times.full?.map((x) => x.toFixed(2)).join(", ")}), peak RSS ${med(rss.full as number[]).toFixed(0)} MB`,
      `- chain / full: ${(med(times.chain as number[]) / med(times.full as number[])).toFixed(2)}×; both restores equal to the source`,
      `- load average at start ${load0.map((x) => x.toFixed(1)).join(" ")}, at end ${load1.map((x) => x.toFixed(1)).join(" ")}`,
      "",
    ].join("\n"),
  );
  if (!args.keep) {
    await fs.rm(path.join(dir, "chain"), { recursive: true, force: true });
    await fs.rm(path.join(dir, "full"), { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
