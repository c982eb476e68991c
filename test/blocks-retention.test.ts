import assert from "node:assert/strict";
import { test } from "node:test";
import type { BlockMap } from "../src/core/types.ts";
import { type KeepPolicy, planRetention, type RetentionItem } from "../src/retention/policy.ts";
import { blockDigest, changedBlocks, deltaMap, wholeMap } from "../src/snapshot/blocks.ts";
import { backupNameAt as nameAt, rng } from "./helpers/history.ts";

/**
 * Issue 13 "Must show": pruning never removes a backup whose blocks a kept backup needs. Over
 * random histories of a big file that changes block by block (some backups storing changed
 * blocks, some the whole file, fulls now and then), with random keep policies: every backup a
 * block map of a kept backup names is kept, after the removals in their order too.
 */

const BS = 1024;

function randomPolicy(rand: () => number): KeepPolicy {
  for (;;) {
    const p: KeepPolicy = {};
    if (rand() < 0.6) p.last = Math.floor(rand() * 5);
    if (rand() < 0.5) p.daily = Math.floor(rand() * 6);
    if (rand() < 0.4) p.weekly = Math.floor(rand() * 4);
    if (rand() < 0.3) p.monthly = Math.floor(rand() * 3);
    if ([p.last, p.daily, p.weekly, p.monthly].some((x) => (x ?? 0) > 0)) return p;
  }
}

/** Block digests of a file of `blocks` blocks whose block k has version v[k]. */
function digestsOf(versions: number[]): string {
  return versions.map((v, k) => blockDigest(Buffer.from(`${k}:${v}`))).join("");
}

test("prune keeps every backup whose blocks a kept backup needs (random histories)", () => {
  for (let seed = 1; seed <= 400; seed++) {
    const rand = rng(seed);
    const items: RetentionItem[] = [];
    const maps = new Map<string, BlockMap>();
    let versions: number[] = Array.from({ length: 4 + Math.floor(rand() * 20) }, () => 0);
    let t = Date.UTC(2026, 0, 1);
    let parent: string | null = null;
    const count = 3 + Math.floor(rand() * 40);
    for (let i = 0; i < count; i++) {
      t += Math.floor(rand() * 3 * 86_400_000) + 60_000;
      const name = nameAt(i, t);
      // The file changes: some blocks rewritten, maybe grown or shrunk.
      versions = versions.map((v) => (rand() < 0.15 ? v + 1 : v));
      if (rand() < 0.2) versions.push(...Array.from({ length: 1 + Math.floor(rand() * 3) }, () => i));
      if (rand() < 0.1 && versions.length > 2) versions = versions.slice(0, versions.length - 1);
      if (rand() < 0.05) versions = versions.map((v) => v + 1000 + i); // rewritten wholesale
      const digests = digestsOf(versions);
      const full = parent === null || rand() < 0.12;
      const parentMap = parent ? maps.get(parent) : undefined;
      let map: BlockMap;
      if (full || !parentMap) map = wholeMap(name, BS, digests);
      else {
        const changed = changedBlocks(parentMap, digests);
        map =
          changed.length < versions.length
            ? deltaMap(parentMap, name, digests, changed)
            : wholeMap(name, BS, digests);
      }
      maps.set(name, map);
      items.push({ name, startedAt: new Date(t).toISOString(), parent: full ? null : parent });
      parent = name;
    }
    const policy = randomPolicy(rand);
    const plan = planRetention(items, policy, "UTC");
    const left = new Set(items.map((b) => b.name));
    const check = (when: string) => {
      for (const name of left) {
        for (const holder of maps.get(name)?.in ?? []) {
          assert.ok(
            left.has(holder),
            `seed ${seed} ${JSON.stringify(policy)} ${when}: ${name} needs blocks in ${holder}, which was removed`,
          );
        }
      }
    };
    for (const name of plan.remove) {
      left.delete(name);
      check(`after removing ${name}`);
    }
    assert.deepEqual([...left].sort(), [...plan.keep].sort(), `seed ${seed}`);
  }
});
