/**
 * The benchmark: bsched against cp, rsync, tar+zstd/pigz, restic and borg on the same data.
 * Not part of the tests. `npm run bench [-- --quick] [--dir DIR] [--runs N] [--only A|B|startup] [--profile DIR]
 * [--compare DIR] [--tools bsched,restic]`. `--compare DIR` also measures the bsched of another checkout (e.g. a
 * `git worktree add --detach DIR REV` of an older commit) in the same rounds, alternated with
 * this one: on a shared machine, two runs minutes apart do not see the same load.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  buildB,
  changeA,
  changeB,
  diffSnapshots,
  generateA,
  installB,
  listTree,
  snapshot,
  storedBytes,
  warm,
} from "./datasets.ts";
import { measure, run, spawnCollect } from "./measure.ts";
import { fmtBytes, type Result, type RunRecord, renderDocument } from "./report.ts";
import { measureStartup, renderStartup, type StartupResult } from "./startup.ts";
import {
  borg,
  bsched,
  bschedBin,
  bschedHasCompressed,
  type Ctx,
  cpA,
  type Op,
  peerVersions,
  restic,
  rsync,
  switchBschedCheckout,
  type Tool,
  tarIncremental,
  tarPigz,
  tarZstd,
} from "./tools.ts";

const REPO = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    dir: { type: "string", default: path.join(os.tmpdir(), "bsched-bench") },
    runs: { type: "string" },
    only: { type: "string" },
    out: { type: "string" },
    profile: { type: "string" },
    bsched: { type: "string" },
    rev: { type: "string" },
    compare: { type: "string" },
    tools: { type: "string" },
    render: { type: "string" },
    "no-install": { type: "boolean", default: false },
  },
});

const quick = args.quick === true;
if (args.bsched) switchBschedCheckout(args.bsched);
let revNote = "";

/** Measure a committed revision: `git archive REV` into the scratch folder, beside this node_modules. */
/**
 * Measure this work tree as it is now, copied aside: others may edit src/ during a long run, and
 * one run must measure one program.
 */
async function freezeWorkTree(): Promise<void> {
  const dest = path.join(dir, "bsched-worktree");
  await fs.rm(dest, { recursive: true, force: true });
  await fs.mkdir(dest, { recursive: true });
  for (const f of ["bin", "build", "src", "package.json"])
    await fs.cp(path.join(REPO, f), path.join(dest, f), { recursive: true });
  await fs.symlink(path.join(REPO, "node_modules"), path.join(dest, "node_modules"));
  await buildBundle(dest);
  switchBschedCheckout(dest);
  const head = (await run("git", ["-C", REPO, "log", "-1", "--format=%h %s"])).trim();
  const dirty = (await run("git", ["-C", REPO, "status", "--porcelain", "--", "src", "bin"])).trim();
  revNote = `work tree at ${head}${dirty ? `, plus uncommitted changes in src/ (${dirty.split("\n").length} paths)` : ""}, copied at start`;
}

async function exportRev(rev: string): Promise<void> {
  const sha = (await run("git", ["-C", REPO, "rev-parse", "--short", rev])).trim();
  const dest = path.join(dir, `bsched-${sha}`);
  await fs.rm(dest, { recursive: true, force: true });
  await fs.mkdir(dest, { recursive: true });
  await run("bash", ["-c", `git -C '${REPO}' archive --format=tar ${sha} | tar -x -C '${dest}'`]);
  await fs.symlink(path.join(REPO, "node_modules"), path.join(dest, "node_modules"));
  await buildBundle(dest);
  switchBschedCheckout(dest);
  revNote = `${(await run("git", ["-C", REPO, "log", "-1", "--format=%h %s", sha])).trim()} (exported with git archive)`;
}
/** The CLI bundle `npm ci` builds (build/cli.ts), so the copy runs as an installed bsched does. */
async function buildBundle(dest: string): Promise<void> {
  if (await fs.stat(path.join(dest, "build", "cli.ts")).catch(() => undefined)) {
    await run(process.execPath, [path.join(dest, "build", "cli.ts"), "--root", dest]);
  }
}

const runs = Number(args.runs ?? (quick ? 1 : 3));
const dir = path.resolve(args.dir as string);
const log = (s: string) => process.stderr.write(`${s}\n`);

const NEEDED: [string, string][] = [
  ["rsync", "rsync"],
  ["zstd", "zstd"],
  ["pigz", "pigz"],
  ["restic", "restic"],
  ["borg", "borgbackup"],
  ["/usr/bin/time", "time"],
];

async function installPeers(): Promise<void> {
  const missing: string[] = [];
  for (const [bin, pkg] of NEEDED) {
    const r = await spawnCollect("bash", ["-c", `command -v ${bin}`]);
    if (r.code !== 0) missing.push(pkg);
  }
  if (missing.length === 0) return;
  if (args["no-install"] || process.getuid?.() !== 0) {
    throw new Error(
      `missing peers: ${missing.join(" ")}; install them: sudo apt-get install ${missing.join(" ")}`,
    );
  }
  log(`installing from Debian: ${missing.join(" ")}`);
  await run("apt-get", ["update", "-qq"]);
  await run("apt-get", ["install", "-y", "-qq", ...missing], { env: { DEBIAN_FRONTEND: "noninteractive" } });
}

/** Build `pristine` once per parameters (a stamp file remembers them); the dataset is rsynced from it. */
async function ensurePristine(
  pristine: string,
  params: string,
  make: (d: string) => Promise<void>,
): Promise<void> {
  const stamp = `${pristine}.stamp`;
  if ((await fs.readFile(stamp, "utf8").catch(() => "")) === params) return;
  await fs.rm(stamp, { force: true });
  await fs.rm(pristine, { recursive: true, force: true });
  const t = Date.now();
  await make(pristine);
  await fs.writeFile(stamp, params);
  log(`  built ${pristine} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
}

async function resetTo(pristine: string, data: string): Promise<void> {
  await fs.mkdir(data, { recursive: true });
  await run("rsync", ["-a", "--delete", `${pristine}/`, `${data}/`]);
}

const slug = (s: string) => s.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "");

interface DatasetPlan {
  name: "A" | "B";
  pristine: string;
  data: string;
  change: (data: string) => Promise<void>;
}

async function runDataset(ds: DatasetPlan, tools: Tool[]): Promise<{ results: Result[]; info: string }> {
  const out = path.join(dir, "out", ds.name);
  await fs.rm(out, { recursive: true, force: true }); // a crashed run's leftovers
  const results: Result[] = [];
  const record = (op: Op, tool: string, dataBytes: number) => {
    let r = results.find((x) => x.op === op && x.tool === tool);
    if (!r) {
      r = { op, tool, seconds: [], rssMb: [], stored: [], dataBytes };
      results.push(r);
    }
    return r;
  };
  let info = "";
  for (let round = 0; round < runs; round++) {
    await resetTo(ds.pristine, ds.data);
    const s0 = await listTree(ds.data);
    const s0Bytes = s0.files.reduce((n, f) => n + f.size, 0);
    if (round === 0) {
      info = `${s0.files.length} files, ${s0.dirs} folders, ${s0.symlinks} symlinks, ${fmtBytes(s0Bytes)}`;
      log(`dataset ${ds.name}: ${info}`);
    }
    // Alternate: every round starts with the next tool, so that no tool always follows the same one.
    const order = tools.map((_, i) => tools[(i + round) % tools.length] as Tool);
    const roundDir = path.join(out, `r${round}`);
    const ctx = (t: Tool): Ctx => ({
      source: ds.data,
      store: path.join(roundDir, slug(t.name)),
      cpuProfDir:
        args.profile && round === 0 && t.name.startsWith("bsched") ? path.resolve(args.profile) : undefined,
    });
    let dataBytes = s0Bytes;
    let expected: Awaited<ReturnType<typeof snapshot>> | undefined;
    for (const op of ["full", "incremental", "nochange", "restore", "verify"] as Op[]) {
      if (op === "incremental") {
        await ds.change(ds.data);
        expected = await snapshot(ds.data);
        dataBytes = (await listTree(ds.data)).files.reduce((n, f) => n + f.size, 0);
      }
      for (const t of order) {
        const fn = t.ops[op];
        if (!fn) continue;
        const c = ctx(t);
        const label = t.labels?.[op] ?? t.name;
        const target = path.join(roundDir, `restore-${slug(t.name)}`);
        await warm(op === "restore" || op === "verify" ? [c.store] : [ds.data]);
        const step = await fn(c, target);
        const where = step.measure ?? [c.store];
        const before = where.length > 0 ? await storedBytes(where) : 0;
        const m = await measure(step.cmd, { tmp: dir });
        const r = record(op, label, dataBytes);
        r.seconds.push(m.seconds);
        r.rssMb.push(m.peakRssMb);
        if (where.length > 0) r.stored.push((await storedBytes(where)) - before);
        log(
          `[${ds.name} run ${round + 1}/${runs}] ${op.padEnd(11)} ${label.padEnd(26)} ${m.seconds.toFixed(2).padStart(7)} s ` +
            `${m.peakRssMb.toFixed(0).padStart(5)} MB${where.length > 0 ? `  stored ${fmtBytes(r.stored.at(-1))}` : ""}`,
        );
        if (op === "restore") {
          const diffs = diffSnapshots(expected as Map<string, never>, await snapshot(target));
          if (diffs.length > 0) {
            throw new Error(`RESTORE DIFFERS: ${label} on dataset ${ds.name}:\n  ${diffs.join("\n  ")}`);
          }
        }
      }
    }
  }
  return { results, info };
}

/** The checkout `--compare` names, labelled with its commit. */
async function compared(dirArg: string): Promise<{ dir: string; label: string; note: string }> {
  const d = path.resolve(dirArg);
  await fs.access(path.join(d, "bin", "bsched.js"));
  const r = await spawnCollect("git", ["-C", d, "log", "-1", "--format=%h%n%h %s"]);
  const [label, note] = r.code === 0 ? r.stdout.trim().split("\n") : [path.basename(d), d];
  return { dir: d, label: label || path.basename(d), note: `bsched ${d}: ${note ?? d}` };
}

async function machine(): Promise<string> {
  const checkout = path.dirname(path.dirname(bschedBin()));
  const git = revNote
    ? { stdout: revNote }
    : await spawnCollect("git", ["-C", checkout, "log", "-1", "--format=%h %s"]);
  const dirty = revNote
    ? { stdout: "" }
    : await spawnCollect("git", ["-C", checkout, "status", "--porcelain", "--", "src", "bin"]);
  const v = await peerVersions();
  const fsType = await spawnCollect("bash", ["-c", `df -T ${dir} | tail -1 | awk '{print $2}'`]);
  return [
    `- machine: ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? "?"}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, kernel ${os.release()}, ${fsType.stdout.trim()} at ${dir}`,
    `- node ${process.version} (${process.execPath}); bsched ${checkout}: ${git.stdout.trim() || "(not a git checkout)"}${dirty.stdout.trim() ? " (src/ has uncommitted changes)" : ""}`,
    `- peers: ${Object.values(v).join("; ")}`,
  ].join("\n");
}

async function main(): Promise<void> {
  if (args.render) {
    const rec = JSON.parse(await fs.readFile(args.render, "utf8")) as RunRecord & { startup?: StartupResult };
    const startup = rec.startup ? `\n\n${renderStartup(rec.startup)}` : "";
    process.stdout.write(`${renderDocument(rec)}${startup}\n`);
    return;
  }
  const started = new Date();
  const load0 = os.loadavg();
  await fs.mkdir(dir, { recursive: true });
  await installPeers();
  if (args.rev) await exportRev(args.rev);
  else if (!args.bsched) await freezeWorkTree();
  const which = (args.only ?? "A,B,startup").toUpperCase().split(",");
  const hasCompressed = await bschedHasCompressed(dir);
  log(`bsched compressed type: ${hasCompressed ? "available" : "not available yet (rows left out)"}`);
  const other = args.compare ? await compared(args.compare) : undefined;
  // `--tools bsched,rsync`: only the tools whose names start so (a focused before/after run).
  const wanted = args.tools?.split(",").map((w) => w.trim());
  const tools: Tool[] = [
    bsched("separate"),
    ...(other ? [bsched("separate", other)] : []),
    ...(hasCompressed ? [bsched("compressed")] : []),
    ...(hasCompressed && other ? [bsched("compressed", other)] : []),
    cpA,
    rsync,
    tarZstd,
    tarPigz,
    tarIncremental,
    restic,
    borg,
  ].filter((t) => !wanted || wanted.some((w) => t.name.startsWith(w)));
  const scaleA = quick ? 0.06 : 1;
  const maxFilesB = quick ? 2500 : undefined;
  const plans: DatasetPlan[] = [];
  if (which.includes("A")) {
    const pristine = path.join(dir, "A", `pristine-${scaleA}`);
    await ensurePristine(pristine, `A v1 scale ${scaleA}`, (d) => generateA(d, scaleA));
    plans.push({ name: "A", pristine, data: path.join(dir, "A", "data"), change: (d) => changeA(d, scaleA) });
  }
  if (which.includes("B")) {
    const nm = await installB(path.join(dir, "B", "install"));
    const pristine = path.join(dir, "B", `pristine-${maxFilesB ?? "all"}`);
    await ensurePristine(pristine, `B v1 ${maxFilesB ?? "all"}`, (d) => buildB(nm, d, maxFilesB));
    plans.push({ name: "B", pristine, data: path.join(dir, "B", "data"), change: (d) => changeB(d) });
  }
  const datasets: RunRecord["datasets"] = [];
  for (const p of plans) {
    const { results, info } = await runDataset(p, tools);
    datasets.push({ name: p.name, info, results });
  }
  // Start-up last: the datasets' runs leave the page cache as a user's machine has it.
  const startup = which.includes("STARTUP")
    ? await measureStartup({ bin: bschedBin(), project: REPO, dir, rounds: quick ? 5 : 15, log })
    : undefined;
  // Outputs are deleted only at the end: deleting many files makes the next creates slow for
  // minutes here, and freeing gigabytes of page cache makes the next run's memory slow to touch.
  await fs.rm(path.join(dir, "out"), { recursive: true, force: true });
  const load1 = os.loadavg();
  const secs = ((Date.now() - started.getTime()) / 1000).toFixed(0);
  const rec: RunRecord & { startup?: StartupResult } = {
    title: `bsched benchmark, ${started.toISOString().slice(0, 10)}${quick ? " (quick)" : ""}`,
    notes: [
      await machine(),
      ...(other
        ? [`- compared in the same rounds: ${other.note}; its rows are "bsched TYPE @${other.label}"`]
        : []),
      ...(wanted ? [`- tools: only those named ${wanted.join(", ")}… (--tools)`] : []),
      `- runs: ${runs} per cell, tools alternated (each run starts one tool later), dataset read once before each timed run; took ${secs} s`,
      `- load average at start ${load0.map((x) => x.toFixed(1)).join(" ")}, at end ${load1.map((x) => x.toFixed(1)).join(" ")}: other work shares this machine, so absolute times are noisy; the ratios (measured in the same run, alternated) are what to read`,
      `- bsched compressed type: ${hasCompressed ? "measured" : "not available in this build: its rows and targets are left out"}`,
      "- every restore was compared with the source (kinds, modes, symlink targets, SHA-256 of every file; in SQLite files the header fields that SQLite's online backup rewrites — change counter, schema cookie, version-valid-for — are left out, every page must match): all equal",
    ],
    datasets,
    ...(startup ? { startup } : {}),
  };
  const doc = `${renderDocument(rec)}${startup ? `\n\n${renderStartup(startup)}` : ""}`;
  process.stdout.write(`${doc}\n`);
  const outFile = args.out
    ? path.resolve(args.out)
    : quick
      ? path.join(dir, `results-quick-${started.toISOString().slice(0, 10)}.md`)
      : path.join(REPO, "bench", "results", `${started.toISOString().slice(0, 10)}.md`);
  await fs.mkdir(path.dirname(outFile), { recursive: true });
  await fs.writeFile(outFile, `${doc}\n`);
  await fs.writeFile(`${outFile.replace(/\.md$/, "")}.json`, `${JSON.stringify(rec, null, 1)}\n`);
  log(`written to ${outFile} (raw times beside it, .json: re-render with --render FILE.json)`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
