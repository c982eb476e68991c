import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";

/**
 * The leak hunt's tools (issue 11 "Must show"): where a secret must never be found. A failure
 * names the place and the secret's label, never the secret or the text around it, so that a
 * failing test does not print what it protects.
 */

/** Fails if any of `secrets` (label → value) occurs in any of `places` (name → text). */
export function assertNoSecrets(secrets: Record<string, string>, places: Record<string, string>): void {
  const found: string[] = [];
  for (const [where, text] of Object.entries(places)) {
    for (const [label, value] of Object.entries(secrets)) {
      if (value !== "" && text.includes(value)) found.push(`${label} in ${where}`);
    }
  }
  assert.deepEqual(found, [], `secrets found: ${found.join("; ")}`);
}

/** Every file under `dir` (recursively) as text, keyed by path: the state folder, a catalog, a backup folder. */
export async function filesUnder(
  dir: string,
  skip: (file: string) => boolean = () => false,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of await fs.readdir(dir, { recursive: true })) {
    const file = path.join(dir, rel);
    if (skip(file)) continue;
    const st = await fs.lstat(file).catch(() => undefined);
    if (st?.isFile()) out[file] = (await fs.readFile(file)).toString("latin1");
  }
  return out;
}

/**
 * Samples the whole process list (`ps -eww -o args=`, every argument of every process) until
 * stopped: for the processes a run starts (ssh, smbclient…) and bsched itself.
 */
export function sampleProcessList(everyMs = 50): { stop(): Promise<string> } {
  const samples: string[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      samples.push(await psOnce());
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return samples.join("\n");
    },
  };
}

function psOnce(): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn("ps", ["-eww", "-o", "args="], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.on("error", () => resolve(""));
    child.on("close", () => resolve(out));
  });
}
