/**
 * Summarise a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --profile DIR`): the
 * functions with the most self time, then bsched's own functions by inclusive time.
 * Usage: `npx node bench/profile-summary.ts FILE.cpuprofile [N]`.
 */
import fs from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Hot {
  name: string;
  ms: number;
  share: number;
}

const label = (cf: CallFrame) =>
  `${cf.functionName || "(anonymous)"} ${cf.url.replace(/^.*\/(src|node_modules)\//, "$1/")}${cf.url ? `:${cf.lineNumber + 1}` : ""}`;

/** Self time per function, and inclusive time per function of bsched's src/. */
export function summarizeProfile(p: Profile): { totalMs: number; self: Hot[]; inclusive: Hot[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  let total = 0;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    total += us;
    const node = byId.get(id);
    if (!node) continue;
    const k = label(node.callFrame);
    self.set(k, (self.get(k) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)?.callFrame;
      if (!cf?.url.includes("/src/")) continue;
      const key = label(cf);
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + us);
    }
  }
  const top = (m: Map<string, number>): Hot[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: us / 1000, share: total > 0 ? us / total : 0 }));
  return { totalMs: total / 1000, self: top(self), inclusive: top(incl) };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop() as string)) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: node bench/profile-summary.ts FILE.cpuprofile [N]\n");
    process.exit(2);
  }
  const n = Number(process.argv[3] ?? 20);
  const s = summarizeProfile(JSON.parse(fs.readFileSync(file, "utf8")) as Profile);
  const line = (h: Hot) =>
    `${(h.share * 100).toFixed(1).padStart(5)}%  ${h.ms.toFixed(0).padStart(6)} ms  ${h.name}`;
  process.stdout.write(`${s.totalMs.toFixed(0)} ms sampled\n-- self time --\n`);
  process.stdout.write(`${s.self.slice(0, n).map(line).join("\n")}\n-- bsched functions, inclusive --\n`);
  process.stdout.write(`${s.inclusive.slice(0, n).map(line).join("\n")}\n`);
}
