import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type KeepPolicy, planRetention, type RetentionItem } from "../src/retention/policy.ts";
import { assessChains } from "../src/snapshot/chain.ts";
import { backupNameAt as name, rng } from "./helpers/history.ts";

/** A random history: fulls and incrementals, each incremental's parent the previous backup. */
function history(rand: () => number, n: number): RetentionItem[] {
  const out: RetentionItem[] = [];
  let t = Date.parse("2026-01-01T04:00:00Z");
  for (let i = 0; i < n; i++) {
    t += Math.floor(rand() * 3 * 86_400_000) + 60_000;
    const prev = out.at(-1);
    const full = !prev || rand() < 0.25;
    out.push({
      name: name(i, t),
      startedAt: new Date(t).toISOString(),
      parent: full ? null : (prev?.name ?? null),
    });
  }
  return out;
}

function randomPolicy(rand: () => number): KeepPolicy {
  for (;;) {
    const p: KeepPolicy = {};
    if (rand() < 0.6) p.last = Math.floor(rand() * 5);
    if (rand() < 0.6) p.daily = Math.floor(rand() * 8);
    if (rand() < 0.5) p.weekly = Math.floor(rand() * 5);
    if (rand() < 0.5) p.monthly = Math.floor(rand() * 4);
    if ([p.last, p.daily, p.weekly, p.monthly].some((x) => (x ?? 0) > 0)) return p;
  }
}

describe("retention never breaks a chain (property, 500 random histories × policies)", () => {
  test("every kept backup's ancestors are kept; deleting in the given order never strands a backup", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const rand = rng(seed);
      const items = history(rand, 1 + Math.floor(rand() * 60));
      const policy = randomPolicy(rand);
      const tz = ["UTC", "Europe/Paris", "America/Santiago", "Asia/Kolkata"][seed % 4] as string;
      const plan = planRetention(items, policy, tz);
      const ctx = `seed ${seed} policy ${JSON.stringify(policy)} tz ${tz}`;
      const byName = new Map(items.map((b) => [b.name, b]));
      const kept = new Set(plan.keep);
      assert.equal(plan.keep.length + plan.remove.length, items.length, ctx);
      for (const k of kept) {
        for (let p = byName.get(k)?.parent; p; p = byName.get(p)?.parent)
          assert.ok(kept.has(p), `${ctx}: ${k} needs ${p}`);
      }
      // The newest backup (the one just made) is always kept.
      assert.ok(kept.has(items.at(-1)?.name as string), ctx);
      // Simulate the deletions one by one: after each, every remaining backup's parent remains.
      const remaining = new Set(items.map((b) => b.name));
      for (const r of plan.remove) {
        remaining.delete(r);
        for (const n of remaining) {
          const p = byName.get(n)?.parent;
          if (p) assert.ok(remaining.has(p), `${ctx}: deleting ${r} stranded ${n}`);
        }
      }
      // The policy's own promise: at least `last` backups are kept.
      assert.ok(plan.keep.length >= Math.min(policy.last ?? 0, items.length), ctx);
    }
  });
});

describe("retention policy rules", () => {
  const at = (iso: string, parent: string | null = null, n = iso): RetentionItem => ({
    name: n,
    startedAt: iso,
    parent,
  });

  test("last N keeps the N newest", () => {
    const items = [at("2026-01-01T04:00:00Z"), at("2026-01-02T04:00:00Z"), at("2026-01-03T04:00:00Z")];
    const p = planRetention(items, { last: 2 }, "UTC");
    assert.deepEqual(p.keep, ["2026-01-02T04:00:00Z", "2026-01-03T04:00:00Z"]);
    assert.deepEqual(p.remove, ["2026-01-01T04:00:00Z"]);
  });

  test("daily keeps the newest of each local day (days in the set's time zone)", () => {
    // 23:30Z on Jan 1 is already Jan 2 in Paris: it and the 04:00Z Jan 2 backup share a Paris day.
    const items = [at("2026-01-01T10:00:00Z"), at("2026-01-01T23:30:00Z"), at("2026-01-02T04:00:00Z")];
    assert.deepEqual(planRetention(items, { daily: 5 }, "Europe/Paris").keep, [
      "2026-01-01T10:00:00Z",
      "2026-01-02T04:00:00Z",
    ]);
    assert.deepEqual(planRetention(items, { daily: 5 }, "UTC").keep, [
      "2026-01-01T23:30:00Z",
      "2026-01-02T04:00:00Z",
    ]);
  });

  test("weekly uses ISO weeks, monthly calendar months", () => {
    const items = [
      at("2025-12-28T04:00:00Z"), // Sunday, ISO week 2025-W52
      at("2025-12-29T04:00:00Z"), // Monday, ISO week 2026-W01
      at("2026-01-04T04:00:00Z"), // Sunday, 2026-W01
      at("2026-01-05T04:00:00Z"), // Monday, 2026-W02
    ];
    assert.deepEqual(planRetention(items, { weekly: 3 }, "UTC").keep, [
      "2025-12-28T04:00:00Z",
      "2026-01-04T04:00:00Z",
      "2026-01-05T04:00:00Z",
    ]);
    assert.deepEqual(planRetention(items, { monthly: 2 }, "UTC").keep, [
      "2025-12-29T04:00:00Z",
      "2026-01-05T04:00:00Z",
    ]);
  });

  test("an incremental kept keeps its whole chain, with the reason", () => {
    const items = [
      at("2026-01-01T04:00:00Z", null, "F"),
      at("2026-01-02T04:00:00Z", "F", "I1"),
      at("2026-01-03T04:00:00Z", "I1", "I2"),
    ];
    const p = planRetention(items, { last: 1 }, "UTC");
    assert.deepEqual(p.keep, ["F", "I1", "I2"]);
    assert.deepEqual(p.remove, []);
    assert.deepEqual(p.reasons.F, ["needed by I1"]);
  });

  test("a policy that keeps nothing is refused", () => {
    assert.throws(() => planRetention([], { last: 0, daily: 0 }, "UTC"), /keeps nothing/);
    assert.throws(() => planRetention([], {}, "UTC"), /keeps nothing/);
  });
});

describe("retention with broken backups (rules)", () => {
  test("assessChains names the first failing link", () => {
    const s = assessChains([
      { name: "F", mode: "full", parent: null, digest: "f" },
      { name: "I1", mode: "incremental", parent: { name: "F", digest: "f" }, digest: "i1" },
      { name: "I2", damaged: "manifest unreadable" },
      { name: "I3", mode: "incremental", parent: { name: "I2", digest: "x" } },
      { name: "I4", mode: "incremental", parent: { name: "I3", digest: "x" } },
      { name: "J", mode: "incremental", parent: { name: "F", digest: "other" } },
      { name: "K", mode: "incremental", parent: { name: "GONE", digest: "x" } },
      { name: "L", mode: "incremental", parent: null },
    ]);
    assert.deepEqual(Object.fromEntries([...s].map(([n, r]) => [n, r.state === "ok" ? "ok" : r.reason])), {
      F: "ok",
      I1: "ok",
      I2: "manifest unreadable",
      I3: "depends on broken I2 (manifest unreadable)",
      I4: "depends on broken I3",
      J: "parent F altered (manifest digest differs)",
      K: "parent GONE missing",
      L: "incremental but names no parent",
    });
  });

  test("broken backups neither count toward keep nor are deleted by it", () => {
    const items: RetentionItem[] = [
      { name: "F1", startedAt: "2026-01-01T04:00:00Z", parent: null },
      { name: "I2", startedAt: "2026-01-02T04:00:00Z", parent: "F1" },
      { name: "I3", startedAt: "2026-01-03T04:00:00Z", parent: "I2", broken: "manifest damaged (cut short)" },
      { name: "I4", startedAt: "2026-01-04T04:00:00Z", parent: "I3", broken: "depends on broken I3" },
      { name: "F5", startedAt: "2026-01-05T04:00:00Z", parent: null },
      { name: "X", startedAt: "", parent: null, broken: "manifest missing" },
    ];
    const p = planRetention(items, { last: 2 }, "UTC");
    assert.deepEqual(p.keep, ["F1", "I2", "F5"]);
    assert.deepEqual(p.remove, []);
    assert.deepEqual(
      p.broken.map((b) => b.name),
      ["I4", "I3", "X"],
    );
    // daily: the broken I4 does not stand for its day; with last 1 the full F5 alone is kept.
    const d = planRetention(items, { daily: 2 }, "UTC");
    assert.deepEqual(d.keep, ["F1", "I2", "F5"], "the two newest days with a restorable backup");
    assert.deepEqual(planRetention(items, { last: 1 }, "UTC").remove, ["I2", "F1"]);
  });
});
