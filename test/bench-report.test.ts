import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sqliteNeutral } from "../bench/datasets.ts";
import {
  cell,
  fmtBytes,
  pairedRatio,
  pairRatios,
  type Result,
  ratio,
  renderCompare,
  renderTable,
  renderTargets,
} from "../bench/report.ts";

const res = (
  op: Result["op"],
  tool: string,
  seconds: number[],
  stored: number[] = [],
  rssMb = [50],
): Result => ({
  op,
  tool,
  seconds,
  rssMb,
  stored,
  dataBytes: 1e9,
});

describe("bench: ratios", () => {
  it("divides, and is undefined for a missing or zero divisor", () => {
    assert.equal(ratio(3, 2), 1.5);
    assert.equal(ratio(3, 0), undefined);
    assert.equal(ratio(undefined, 2), undefined);
    assert.equal(ratio(1, Number.NaN), undefined);
  });
  it("takes the median of per-run ratios, so that a slow run on both sides cancels out", () => {
    assert.equal(pairedRatio([2, 20, 4], [1, 10, 1]), 2);
    // Runs that cannot be paired: the ratio of the medians.
    assert.equal(pairedRatio([2, 4, 6], [1, 2]), 4 / 1.5);
  });
  it("compares each peer with the bsched row of its pair", () => {
    const rs = [
      res("full", "bsched separate", [3, 2, 100], [1000]),
      res("full", "rsync -a", [1, 1, 50], [1000]),
      res("full", "bsched compressed", [4, 4, 4], [330]),
      res("full", "tar | zstd -3 -T0", [2, 2, 2], [300]),
    ];
    assert.deepEqual(pairRatios(rs, "full", "rsync -a"), { time: 2, size: 1, against: "bsched separate" });
    const z = pairRatios(rs, "full", "tar | zstd -3 -T0");
    assert.equal(z.time, 2);
    assert.ok(Math.abs((z.size ?? 0) - 1.1) < 1e-9);
    assert.equal(z.against, "bsched compressed");
    assert.deepEqual(pairRatios(rs, "full", "borg (lz4)"), {});
  });
});

describe("bench: tables", () => {
  it("renders one row per result, escapes pipes, shows ratios on peer rows", () => {
    const rs = [
      res("full", "bsched separate", [2, 2, 2], [1e9], [80, 90, 85]),
      res("full", "cp -a", [1, 1, 1], [1e9]),
      res("full", "tar | zstd -3 -T0", [0.5], [3e8]),
      res("verify", "bsched separate", [1]),
    ];
    const t = renderTable(rs).split("\n");
    assert.equal(t.length, 2 + rs.length);
    assert.equal(t[2], "| full backup | bsched separate | 2.00 | 500 | 1.00 GB | 90 | 3 | – | – |");
    assert.equal(t[3], "| full backup | cp -a | 1.00 | 1000 | 1.00 GB | 50 | 3 | 2.00× | 1.00× |");
    assert.match(t[4] as string, /^\| full backup \| tar \\\| zstd -3 -T0 \| 0\.50 \|/);
    assert.match(t[5] as string, /\| verify \| bsched separate \| 1\.00 \| 1000 \| – \|/);
  });
  it("says which targets are met, missed or not measured", () => {
    const rs = [
      res("full", "bsched separate", [3], [], [100]),
      res("full", "rsync -a", [2]),
      res("incremental", "bsched separate", [1], [], [130]),
      res("incremental", "borg (lz4)", [2]),
    ];
    const t = renderTargets("A", rs);
    assert.match(t, /\| full separate ≤ 1\.2 × rsync -a \| 1\.50× \| MISSED \|/);
    assert.match(t, /\| 1 % incremental ≤ 1\.0 × borg \| 0\.50× \| met \|/);
    assert.match(t, /tar\\\|zstd -T0 \(time\) \| – \| not measured \|/);
    assert.match(t, /\| peak RSS ≤ 120 MB \(MB\) \| 130 \| MISSED \|/);
  });
  it("compares this build with a checkout measured in the same rounds (--compare), run by run", () => {
    const rs = [
      res("full", "bsched separate", [2, 4, 3], [], [90]),
      res("full", "bsched separate @abc1234", [1, 4, 2], [], [80]),
      res("full", "rsync -a", [1, 1, 1]),
      res("verify", "bsched compressed", [1]),
      res("verify", "bsched compressed @abc1234", [2], [], [200]),
    ];
    const t = renderCompare(rs).split("\n");
    assert.equal(t.length, 4);
    assert.match(t[0] as string, /@abc1234 median s \| this build median s \| this\/@abc1234 time/);
    // Per-run ratios 2, 1, 1.5: their median, not the ratio of the medians (3/2).
    assert.equal(t[2], "| full backup | bsched separate | 2.00 | 3.00 | 1.50× | 80 → 90 |");
    assert.equal(t[3], "| verify | bsched compressed | 2.00 | 1.00 | 0.50× | 200 → 50 |");
    assert.equal(renderCompare([res("full", "bsched separate", [1])]), "", "nothing compared: no table");
    // The compared checkout is not this build: its RSS does not count against the target.
    assert.match(renderTargets("A", rs), /\| peak RSS ≤ 120 MB \(MB\) \| 90 \| met \|/);
  });
  it("formats bytes and cells", () => {
    assert.equal(fmtBytes(1_500_000_000), "1.50 GB");
    assert.equal(fmtBytes(2_500_000), "2.5 MB");
    assert.equal(fmtBytes(999), "999 B");
    assert.equal(fmtBytes(undefined), "–");
    assert.equal(cell("a | b"), "a \\| b");
  });
});

describe("bench: SQLite header neutralisation for restore comparison", () => {
  it("zeroes only the fields SQLite's online backup rewrites, and only in SQLite files", () => {
    const db = Buffer.alloc(4096, 7);
    Buffer.from("SQLite format 3\0", "latin1").copy(db);
    const n = sqliteNeutral(db);
    assert.equal(n.readUInt32BE(24), 0);
    assert.equal(n.readUInt32BE(40), 0);
    assert.equal(n.readUInt32BE(92), 0);
    assert.equal(n.readUInt32BE(96), 0);
    assert.equal(n[28], 7);
    assert.equal(n[100], 7);
    assert.equal(db[24], 7, "the caller's buffer is left alone");
    const other = Buffer.alloc(200, 7);
    assert.equal(sqliteNeutral(other), other);
  });
});
