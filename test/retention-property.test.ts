import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { after, describe, test } from "node:test";
import type { SetConfig } from "../src/config/load.ts";
import type { Manifest } from "../src/core/types.ts";
import { assessBackups } from "../src/destination/backups.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { systemClock } from "../src/platform/clock.ts";
import { locateForSet } from "../src/restore/locate.ts";
import { type KeepPolicy, planRetention } from "../src/retention/policy.ts";
import { pruneSet } from "../src/retention/prune.ts";
import { assessChains } from "../src/snapshot/chain.ts";
import { digestOf, serializeManifest } from "../src/snapshot/manifest.ts";
import { tempDir } from "./helpers/cli.ts";
import { backupNameAt as nameAt, rng } from "./helpers/history.ts";

/**
 * Issue 9 "Must show": retention over random histories with damaged manifests, missing folders,
 * altered parents and chains of every length. After every prune the newest restorable state is
 * still restorable, and every backup left is restorable or flagged broken. A pure model runs
 * hundreds of histories; real folders check the same against restore's own chain check.
 */

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

/** One backup of the model: what its folder would show. */
interface ModelBackup {
  name: string;
  startedAt: string;
  mode: "full" | "incremental";
  parent: { name: string; digest: string } | null;
  digest: string;
  damaged?: string;
}

/** Restorability the slow, obvious way: walk the chain, checking every link (the oracle). */
function restorable(m: Map<string, ModelBackup>, name: string): boolean {
  const seen = new Set<string>();
  for (let b = m.get(name); b; ) {
    if (b.damaged || seen.has(b.name)) return false;
    seen.add(b.name);
    if (!b.parent) return b.mode === "full";
    const p = m.get(b.parent.name);
    if (!p || p.digest !== b.parent.digest) return false;
    b = p;
  }
  return false;
}

const newestRestorable = (m: Map<string, ModelBackup>) =>
  [...m.values()]
    .filter((b) => restorable(m, b.name))
    .sort((a, b) => (a.startedAt < b.startedAt ? -1 : 1))
    .at(-1)?.name;

/** What prune does, on the model: assess, plan, delete. Returns the deleted names. */
function modelPrune(m: Map<string, ModelBackup>, policy: KeepPolicy, brokenOnly: boolean): string[] {
  const states = assessChains([...m.values()]);
  const items = [...m.values()].map((b) => {
    const s = states.get(b.name);
    return {
      name: b.name,
      startedAt: b.startedAt,
      parent: b.parent?.name ?? null,
      broken: s?.state === "broken" ? s.reason : undefined,
    };
  });
  const plan = planRetention(items, policy, "UTC");
  const remove = brokenOnly ? plan.broken.map((b) => b.name) : plan.remove;
  for (const n of remove) m.delete(n);
  return remove;
}

describe("retention with broken backups (property: 300 random histories, a prune after every step)", () => {
  test("the newest restorable state survives every prune; nothing restorable is broken by it; nothing broken is deleted but by --broken", () => {
    let prunes = 0;
    let brokenSeen = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const rand = rng(seed);
      const policy = randomPolicy(rand);
      const m = new Map<string, ModelBackup>();
      let t = Date.parse("2026-01-01T04:00:00Z");
      const steps = 1 + Math.floor(rand() * 30);
      for (let i = 0; i < steps; i++) {
        const ctx = `seed ${seed} step ${i} policy ${JSON.stringify(policy)}`;
        const r = rand();
        const names = [...m.keys()];
        const victim = names[Math.floor(rand() * names.length)];
        if (victim && r < 0.08) (m.get(victim) as ModelBackup).damaged = "manifest unreadable";
        else if (victim && r < 0.14) m.delete(victim);
        else if (victim && r < 0.18) (m.get(victim) as ModelBackup).digest = `altered-${i}`;
        else {
          // A backup as `bsched backup` makes it: an incremental on the newest when that chain is
          // whole (links present), else a full. Sometimes a full anyway: chains of every length.
          t += Math.floor(rand() * 2 * 86_400_000) + 60_000;
          const newest = [...m.values()].sort((a, b) => (a.startedAt < b.startedAt ? -1 : 1)).at(-1);
          const useParent = newest && !newest.damaged && rand() < 0.8 && restorable(m, newest.name);
          const name = nameAt(i, t);
          m.set(name, {
            name,
            startedAt: new Date(t).toISOString(),
            mode: useParent ? "incremental" : "full",
            parent: useParent ? { name: newest.name, digest: newest.digest } : null,
            digest: `d-${name}`,
          });
        }
        // The assessment agrees with the oracle for every backup.
        const states = assessChains([...m.values()]);
        for (const b of m.values())
          assert.equal(
            states.get(b.name)?.state === "ok",
            restorable(m, b.name),
            `${ctx}: state of ${b.name}`,
          );
        const okBefore = new Set([...m.keys()].filter((n) => restorable(m, n)));
        brokenSeen += m.size - okBefore.size;
        const newest = newestRestorable(m);
        const brokenOnly = rand() < 0.15;
        const removed = modelPrune(m, policy, brokenOnly);
        prunes++;
        for (const n of removed)
          assert.equal(
            okBefore.has(n),
            !brokenOnly,
            `${ctx}: ${n} deleted by ${brokenOnly ? "--broken" : "keep"}`,
          );
        if (newest) assert.ok(restorable(m, newest), `${ctx}: newest restorable ${newest} lost`);
        for (const n of m.keys())
          if (okBefore.has(n)) assert.ok(restorable(m, n), `${ctx}: prune broke ${n}`);
        const okAfter = [...m.keys()].filter((n) => restorable(m, n)).length;
        assert.ok(okAfter >= Math.min(policy.last ?? 0, okBefore.size), `${ctx}: keep.last not honoured`);
        if (brokenOnly) assert.equal(okAfter, m.size, `${ctx}: --broken left a broken backup`);
      }
    }
    assert.ok(
      prunes > 1000 && brokenSeen > 500,
      `enough prunes (${prunes}) saw broken backups (${brokenSeen})`,
    );
  });
});

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

function manifestOf(b: ModelBackup, host = "h"): Manifest {
  return {
    format: "bsched-manifest",
    formatVersion: 1,
    tool: { name: "bsched", version: "0" },
    host,
    set: "data",
    letter: "D",
    name: b.name,
    type: "separate",
    mode: b.mode,
    timezone: "UTC",
    startedAt: b.startedAt,
    finishedAt: b.startedAt,
    parent: b.parent,
    entries: [
      {
        path: "a",
        kind: "file",
        mode: 0o644,
        mtimeNs: "0",
        uid: 0,
        gid: 0,
        size: 0,
        sha256: digestOf(""),
        from: b.name,
      },
    ],
    deletions: [],
    totals: { files: 1, dirs: 0, symlinks: 0, bytes: 0, storedFiles: 1, storedBytes: 0, deletions: 0 },
    warnings: [],
  };
}

/** Restore's own answer (full manifests, digests, whole chain): the oracle for real folders. */
async function restorableOnDisk(set: SetConfig, name: string): Promise<boolean> {
  return locateForSet(set, name).then(
    () => true,
    () => false,
  );
}

test("real folders (25 random histories): prune and prune --broken keep every restorable state restore accepts", async () => {
  const dir = await tempDir("bsched-retprop-");
  dirs.push(dir);
  let flagged = 0;
  for (let seed = 1; seed <= 25; seed++) {
    const rand = rng(1000 + seed);
    const folder = path.join(dir, `s${seed}`);
    await fs.mkdir(folder);
    const set = { id: "data", letter: "D", folder, keep: randomPolicy(rand) } as SetConfig;
    const ctx = `seed ${1000 + seed} policy ${JSON.stringify(set.keep)}`;
    let t = Date.parse("2026-03-01T04:00:00Z");
    let prev: ModelBackup | undefined;
    const n = 2 + Math.floor(rand() * 9);
    for (let i = 0; i < n; i++) {
      t += Math.floor(rand() * 86_400_000) + 60_000;
      const name = nameAt(i, t);
      const text = (b: ModelBackup) => serializeManifest(manifestOf(b));
      const inc = prev !== undefined && rand() < 0.75;
      const b: ModelBackup = {
        name,
        startedAt: new Date(t).toISOString(),
        mode: inc ? "incremental" : "full",
        parent: inc && prev ? { name: prev.name, digest: digestOf(text(prev)) } : null,
        digest: "",
      };
      await fs.mkdir(path.join(folder, name, "files"), { recursive: true });
      await fs.writeFile(path.join(folder, name, "files", "a"), "");
      await fs.writeFile(path.join(folder, name, "manifest.json"), text(b));
      prev = b;
    }
    // Damage: each backup at most once, one of the ways a folder goes bad.
    for (const name of (await fs.readdir(folder)).filter((x) => x.startsWith("D_"))) {
      const file = path.join(folder, name, "manifest.json");
      const r = rand();
      if (r < 0.08) await fs.truncate(file, 100);
      else if (r < 0.14) {
        const body = await fs.readFile(file, "utf8");
        await fs.truncate(file, body.indexOf("\n") + 3);
      } else if (r < 0.19) await fs.rm(file);
      else if (r < 0.25) await fs.rm(path.join(folder, name), { recursive: true });
      else if (r < 0.3) {
        const body = await fs.readFile(file, "utf8");
        await fs.writeFile(file, body.replace('"host":"h"', '"host":"other"'));
      }
    }
    for (const brokenOnly of [false, true]) {
      const before = await fs.readdir(folder).then((l) => l.filter((x) => x.startsWith("D_")).sort());
      const ok = new Set<string>();
      for (const b of before) if (await restorableOnDisk(set, b)) ok.add(b);
      // The cheap assessment agrees with restore on every folder.
      for (const a of await assessBackups(new LocalDestination(folder), "D", "data"))
        assert.equal(
          a.state === "ok",
          ok.has(a.name),
          `${ctx}: ${a.name} ${a.state === "broken" ? a.reason : "ok"}`,
        );
      flagged += before.length - ok.size;
      const newest = before.filter((b) => ok.has(b)).at(-1);
      const r = await pruneSet(set, { timezone: "UTC", clock: systemClock, brokenOnly });
      for (const d of r.removed)
        assert.equal(ok.has(d), !brokenOnly, `${ctx}: ${d} removed (brokenOnly ${brokenOnly})`);
      const left = await fs.readdir(folder).then((l) => l.filter((x) => x.startsWith("D_")));
      const states = new Map(
        (await assessBackups(new LocalDestination(folder), "D", "data")).map((a) => [a.name, a.state]),
      );
      if (newest) assert.ok(await restorableOnDisk(set, newest), `${ctx}: newest restorable ${newest} lost`);
      for (const l of left) {
        const still = await restorableOnDisk(set, l);
        if (ok.has(l)) assert.ok(still, `${ctx}: prune broke ${l}`);
        assert.ok(still || states.get(l) === "broken", `${ctx}: ${l} neither restorable nor flagged`);
        if (brokenOnly) assert.ok(still, `${ctx}: --broken left ${l}`);
      }
    }
  }
  assert.ok(flagged >= 10, `the histories held broken backups (${flagged})`);
});
