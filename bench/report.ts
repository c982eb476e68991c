import { median } from "./measure.ts";
import type { Op } from "./tools.ts";

/** Every run of one tool doing one operation on one dataset. */
export interface Result {
  op: Op;
  tool: string;
  seconds: number[];
  rssMb: number[];
  /** Bytes this operation added to the tool's store, per run (empty for restore and verify). */
  stored: number[];
  /** Bytes of the dataset state the operation worked on (for MB/s). */
  dataBytes: number;
}

export const OP_LABEL: Record<Op, string> = {
  full: "full backup",
  incremental: "incremental, 1 % changed",
  nochange: "incremental, no change",
  restore: "restore newest",
  verify: "verify",
};

/** Which bsched row each peer is compared with, per operation. */
export const PAIRS: { op: Op; bsched: string; peers: string[] }[] = [
  { op: "full", bsched: "bsched separate", peers: ["cp -a", "rsync -a"] },
  { op: "full", bsched: "bsched compressed", peers: ["tar | zstd -3 -T0", "tar | pigz", "restic"] },
  {
    op: "incremental",
    bsched: "bsched separate",
    peers: ["rsync --link-dest", "tar --listed-incremental", "restic", "borg (lz4)"],
  },
  {
    op: "nochange",
    bsched: "bsched separate",
    peers: ["restic", "borg (lz4)", "tar --listed-incremental", "rsync --link-dest"],
  },
  { op: "restore", bsched: "bsched separate", peers: ["restic", "borg extract", "tar --listed-incremental"] },
  {
    op: "verify",
    bsched: "bsched separate",
    peers: ["restic check --read-data", "borg check --verify-data"],
  },
  // The compressed type against the same peers (after the separate pairs: pairRatios takes the first).
  {
    op: "incremental",
    bsched: "bsched compressed",
    peers: ["tar --listed-incremental", "restic", "borg (lz4)"],
  },
  {
    op: "nochange",
    bsched: "bsched compressed",
    peers: ["restic", "borg (lz4)", "tar --listed-incremental"],
  },
  { op: "restore", bsched: "bsched compressed", peers: ["restic", "borg extract"] },
  {
    op: "verify",
    bsched: "bsched compressed",
    peers: ["restic check --read-data", "borg check --verify-data"],
  },
];

/** a / b, or undefined when either is missing or b is zero. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0)
    return undefined;
  return a / b;
}

/** A table cell: a pipe would end the cell early. */
export function cell(s: string): string {
  return s.replaceAll("|", "\\|");
}

/**
 * bsched's time over a peer's. With one time per run on both sides, the median of the per-run
 * ratios: the two ran minutes apart in the same run, so the machine's slow drift cancels out.
 */
export function pairedRatio(bsched: readonly number[], peer: readonly number[]): number | undefined {
  if (bsched.length === 0 || bsched.length !== peer.length) return ratio(median(bsched), median(peer));
  const rs = bsched.map((b, i) => ratio(b, peer[i]));
  if (rs.some((r) => r === undefined)) return ratio(median(bsched), median(peer));
  return median(rs as number[]);
}

export function fmtRatio(r: number | undefined): string {
  return r === undefined ? "–" : `${r.toFixed(2)}×`;
}

export function fmtSeconds(s: number): string {
  return s < 10 ? s.toFixed(2) : s.toFixed(1);
}

export function fmtBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

export interface Summary {
  seconds: number;
  rssMb: number;
  stored: number | undefined;
}

export function summarize(r: Result): Summary {
  return {
    seconds: median(r.seconds),
    rssMb: Math.max(...r.rssMb),
    stored: r.stored.length > 0 ? median(r.stored) : undefined,
  };
}

function find(results: Result[], op: Op, tool: string): Result | undefined {
  return results.find((r) => r.op === op && r.tool === tool);
}

type PairRatio = { time?: number; size?: number; against?: string };

/** bsched's time and size over `peer`'s, for every bsched row the peer is paired with in `op`. */
export function allPairRatios(results: Result[], op: Op, peer: string): PairRatio[] {
  const out: PairRatio[] = [];
  for (const p of PAIRS) {
    if (p.op !== op || !p.peers.includes(peer)) continue;
    const b = find(results, op, p.bsched);
    const x = find(results, op, peer);
    if (!b || !x) continue;
    const sb = summarize(b);
    const sx = summarize(x);
    out.push({
      time: pairedRatio(b.seconds, x.seconds),
      size: ratio(sb.stored, sx.stored),
      against: p.bsched,
    });
  }
  return out;
}

/** The first pair of `peer` in `op` (separate before compressed). */
export function pairRatios(results: Result[], op: Op, peer: string): PairRatio {
  return allPairRatios(results, op, peer)[0] ?? {};
}

/** One Markdown table: a row per (operation, tool), in the order measured. */
export function renderTable(results: Result[]): string {
  const head =
    "| operation | tool | median s | MB/s | stored | peak RSS MB | runs | bsched/peer time | bsched/peer size |\n" +
    "|---|---|--:|--:|--:|--:|--:|--:|--:|";
  const lines = results.map((r) => {
    const s = summarize(r);
    const mbps = r.dataBytes / 1e6 / s.seconds;
    const prs = r.tool.startsWith("bsched") ? [] : allPairRatios(results, r.op, r.tool);
    // One ratio per bsched row the peer is paired with; the compressed one says so.
    const label = (pr: PairRatio) =>
      pr.against && pr.against !== "bsched separate" ? ` (${pr.against.replace("bsched ", "")})` : "";
    const times = prs.filter((pr) => pr.time !== undefined).map((pr) => `${fmtRatio(pr.time)}${label(pr)}`);
    const sizes = prs.filter((pr) => pr.size !== undefined).map((pr) => `${fmtRatio(pr.size)}${label(pr)}`);
    const timeCell = times.length > 0 ? times.join(", ") : fmtRatio(undefined);
    const sizeCell = sizes.length > 1 ? sizes.join(", ") : fmtRatio(prs[0]?.size);
    return `| ${OP_LABEL[r.op]} | ${cell(r.tool)} | ${fmtSeconds(s.seconds)} | ${mbps.toFixed(0)} | ${fmtBytes(s.stored)} | ${s.rssMb.toFixed(0)} | ${r.seconds.length} | ${timeCell} | ${sizeCell} |`;
  });
  return [head, ...lines].join("\n");
}

const COMPARED = /^(bsched \S+) @(.+)$/;

/**
 * This build against the other checkout measured in the same rounds (`--compare`): for every
 * `bsched TYPE @LABEL` row, this build's `bsched TYPE` time over it (median of the per-run
 * ratios; below 1 means this build is faster) and the peak RSS of both. Empty without such rows.
 */
export function renderCompare(results: Result[]): string {
  const lines: string[] = [];
  let label = "";
  for (const other of results) {
    const m = COMPARED.exec(other.tool);
    if (!m) continue;
    label = m[2] as string;
    const mine = find(results, other.op, m[1] as string);
    if (!mine) continue;
    const a = summarize(mine);
    const b = summarize(other);
    lines.push(
      `| ${OP_LABEL[other.op]} | ${cell(m[1] as string)} | ${fmtSeconds(b.seconds)} | ${fmtSeconds(a.seconds)} | ${fmtRatio(pairedRatio(mine.seconds, other.seconds))} | ${b.rssMb.toFixed(0)} → ${a.rssMb.toFixed(0)} |`,
    );
  }
  if (lines.length === 0) return "";
  return [
    `| operation | tool | @${cell(label)} median s | this build median s | this/@${cell(label)} time | peak RSS MB |`,
    "|---|---|--:|--:|--:|--:|",
    ...lines,
  ].join("\n");
}

export interface Target {
  dataset: "A" | "B";
  text: string;
  limit: number;
  value: (results: Result[]) => number | undefined;
}

const timeRatio = (op: Op, bsched: string, peer: string) => (rs: Result[]) => {
  const b = find(rs, op, bsched);
  const p = find(rs, op, peer);
  return b && p ? pairedRatio(b.seconds, p.seconds) : undefined;
};
const sizeRatio = (op: Op, bsched: string, peer: string) => (rs: Result[]) => {
  const b = find(rs, op, bsched);
  const p = find(rs, op, peer);
  return b && p ? ratio(summarize(b).stored, summarize(p).stored) : undefined;
};
const peakRss = (rs: Result[]) => {
  // This build's rows only: a compared checkout's (`--compare`) are not its peak.
  const b = rs.filter((r) => r.tool.startsWith("bsched") && !COMPARED.test(r.tool));
  return b.length > 0 ? Math.max(...b.map((r) => summarize(r).rssMb)) : undefined;
};

/** The targets (they guide work; they are not assertions). */
export const TARGETS: Target[] = [
  {
    dataset: "A",
    text: "full separate ≤ 1.2 × rsync -a",
    limit: 1.2,
    value: timeRatio("full", "bsched separate", "rsync -a"),
  },
  {
    dataset: "A",
    text: "full compressed ≤ 1.0 × tar|zstd -T0 (time)",
    limit: 1.0,
    value: timeRatio("full", "bsched compressed", "tar | zstd -3 -T0"),
  },
  {
    dataset: "A",
    text: "full compressed ≤ 1.02 × tar|zstd -T0 (size)",
    limit: 1.02,
    value: sizeRatio("full", "bsched compressed", "tar | zstd -3 -T0"),
  },
  {
    dataset: "A",
    text: "full compressed ≤ 0.5 × restic",
    limit: 0.5,
    value: timeRatio("full", "bsched compressed", "restic"),
  },
  {
    dataset: "A",
    text: "1 % incremental ≤ 1.0 × borg",
    limit: 1.0,
    value: timeRatio("incremental", "bsched separate", "borg (lz4)"),
  },
  {
    dataset: "A",
    text: "restore ≤ 1.0 × borg extract",
    limit: 1.0,
    value: timeRatio("restore", "bsched separate", "borg extract"),
  },
  { dataset: "A", text: "peak RSS ≤ 120 MB (MB)", limit: 120, value: peakRss },
  {
    dataset: "B",
    text: "full separate ≤ 2 × cp -a",
    limit: 2,
    value: timeRatio("full", "bsched separate", "cp -a"),
  },
  {
    dataset: "B",
    text: "full compressed ≤ 1.2 × tar|zstd -T0",
    limit: 1.2,
    value: timeRatio("full", "bsched compressed", "tar | zstd -3 -T0"),
  },
  {
    dataset: "B",
    text: "no-change incremental ≤ 0.25 × restic",
    limit: 0.25,
    value: timeRatio("nochange", "bsched separate", "restic"),
  },
  {
    dataset: "B",
    text: "no-change incremental ≤ 2.5 × tar --listed-incremental",
    limit: 2.5,
    value: timeRatio("nochange", "bsched separate", "tar --listed-incremental"),
  },
  { dataset: "B", text: "peak RSS ≤ 120 MB (MB)", limit: 120, value: peakRss },
];

/** The targets of `dataset` with the measured value and whether it is met. */
export function renderTargets(dataset: "A" | "B", results: Result[]): string {
  const lines = TARGETS.filter((t) => t.dataset === dataset).map((t) => {
    const v = t.value(results);
    const verdict = v === undefined ? "not measured" : v <= t.limit ? "met" : "MISSED";
    const shown = v === undefined ? "–" : t.text.endsWith("(MB)") ? v.toFixed(0) : `${v.toFixed(2)}×`;
    return `| ${cell(t.text)} | ${shown} | ${verdict} |`;
  });
  return ["| target | measured | |", "|---|--:|---|", ...lines].join("\n");
}

/** Everything one run measured, as saved beside its Markdown (re-rendered with `--render`). */
export interface RunRecord {
  title: string;
  /** Markdown lines about the machine and the run. */
  notes: string[];
  datasets: { name: "A" | "B"; info: string; results: Result[] }[];
}

const TITLES = {
  A: "Dataset A: databases (SQLite files with realistic rows, logs, a WAL-like file)",
  B: "Dataset B: many small files (an installed npm tree, bench/dataset-b)",
};

export function renderDocument(rec: RunRecord): string {
  const howTo = [
    "- cells: median seconds of the runs; MB/s = the dataset's size over that time; stored = bytes the operation added to the tool's store (hard links counted once); peak RSS = the largest process of the command, for a pipeline (tar | zstd) the sum of its parts, the highest of the runs",
    "- bsched/peer time: the median of the per-run ratios (bsched and the peer ran minutes apart in the same run); below 1 means bsched is faster. Size: ratio of the stored bytes",
  ];
  const sections = rec.datasets.map((d) => {
    const compare = renderCompare(d.results);
    return (
      `## ${TITLES[d.name]}\n\n${d.info}.\n\n${renderTable(d.results)}\n\n` +
      (compare ? `### This build against the compared one (dataset ${d.name})\n\n${compare}\n\n` : "") +
      `### Targets (dataset ${d.name})\n\n${renderTargets(d.name, d.results)}\n`
    );
  });
  return [`# ${rec.title}`, "", ...rec.notes, ...howTo, "", ...sections].join("\n");
}
