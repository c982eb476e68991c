import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

export interface TreeRecord {
  kind: "file" | "dir" | "symlink" | "other";
  mode: number;
  /** Microseconds: the precision restore promises. */
  mtimeUs: number;
  sha256?: string;
  target?: string;
}

/**
 * Everything restore promises to bring back, for each path under `root` (root itself excluded),
 * less the marker a restore leaves at the top (`.bsched-restored`: bsched's, not the state's).
 */
export async function snapshotTree(root: string): Promise<Map<string, TreeRecord>> {
  const out = new Map<string, TreeRecord>();
  const walk = async (rel: string) => {
    for (const d of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
      if (!rel && d.name === ".bsched-restored") continue;
      const r = rel ? `${rel}/${d.name}` : d.name;
      const abs = path.join(root, r);
      const st = await fs.lstat(abs, { bigint: true });
      const rec: TreeRecord = {
        kind: st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "other",
        mode: Number(st.mode & 0o7777n),
        mtimeUs: Number(st.mtimeNs / 1000n),
      };
      if (rec.kind === "file")
        rec.sha256 = createHash("sha256")
          .update(await fs.readFile(abs))
          .digest("hex");
      if (rec.kind === "symlink") {
        rec.target = await fs.readlink(abs);
        rec.mode = 0; // link permissions are not meaningful on Linux
      }
      out.set(r, rec);
      if (rec.kind === "dir") await walk(r);
    }
  };
  await walk("");
  return out;
}

/** Human-readable differences between two snapshots (empty when equal). */
export function diffTrees(expected: Map<string, TreeRecord>, actual: Map<string, TreeRecord>): string[] {
  const diffs: string[] = [];
  for (const [p, e] of expected) {
    const a = actual.get(p);
    if (!a) diffs.push(`missing: ${p}`);
    else if (JSON.stringify(a) !== JSON.stringify(e))
      diffs.push(`differs: ${p}: expected ${JSON.stringify(e)} got ${JSON.stringify(a)}`);
  }
  for (const p of actual.keys()) if (!expected.has(p)) diffs.push(`extra: ${p}`);
  return diffs;
}
