import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";

/** One process, or processes joined by a pipe (run at once), or run one after another. */
export type Command =
  | { kind: "exec"; argv: string[]; cwd?: string; env?: Record<string, string> }
  | { kind: "pipe"; parts: string[][]; cwd?: string; env?: Record<string, string> }
  | { kind: "seq"; parts: string[][]; cwd?: string; env?: Record<string, string> };

export interface TimeV {
  /** "Maximum resident set size (kbytes)". */
  maxRssKb: number;
  /** "Elapsed (wall clock) time", seconds. */
  elapsedS: number;
  exitStatus: number;
}

export interface Measured {
  seconds: number;
  /** Peak RSS, MB: for a pipe the sum of its parts (they run at once), else the largest process. */
  peakRssMb: number;
  stdout: string;
  stderr: string;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** "h:mm:ss" or "m:ss.cc" as printed by GNU time. */
function clockToSeconds(v: string): number {
  const parts = v.trim().split(":").map(Number);
  return parts.reduce((acc, p) => acc * 60 + p, 0);
}

/** Parse the report of `/usr/bin/time -v` (GNU time). Throws when the RSS line is missing. */
export function parseTimeV(text: string): TimeV {
  const rss = /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(text);
  if (!rss) throw new Error(`no "Maximum resident set size" in /usr/bin/time output: ${text.slice(0, 200)}`);
  const el = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\):\s*([\d:.]+)/.exec(text);
  const ex = /Exit status:\s*(\d+)/.exec(text);
  return {
    maxRssKb: Number(rss[1]),
    elapsedS: el ? clockToSeconds(el[1] as string) : Number.NaN,
    exitStatus: ex ? Number(ex[1]) : 0,
  };
}

/** Quote one word for bash. */
export function shq(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

const TIME = "/usr/bin/time";

/** The bash script that runs `cmd` with each process under `/usr/bin/time -v -o <report N>`. */
export function timedScript(cmd: Command, reportBase: string): { script: string; reports: string[] } {
  const parts = cmd.kind === "exec" ? [cmd.argv] : cmd.parts;
  const reports = parts.map((_, i) => `${reportBase}.${i}`);
  const wrapped = parts.map((argv, i) =>
    [TIME, "-v", "-o", reports[i] as string, ...argv].map(shq).join(" "),
  );
  const joiner = cmd.kind === "pipe" ? " | " : " && ";
  return { script: `set -o pipefail; ${wrapped.join(joiner)}`, reports };
}

export interface RunOptions {
  /** Scratch folder for the time reports. */
  tmp: string;
  /** Exit codes taken as success (default: 0 only). */
  okCodes?: number[];
}

let seq = 0;

/** Run `cmd`, timing it as a whole (wall clock, in this process) and reading each part's peak RSS. */
export async function measure(cmd: Command, opts: RunOptions): Promise<Measured> {
  const base = path.join(opts.tmp, `time-${process.pid}-${++seq}`);
  const { script, reports } = timedScript(cmd, base);
  const started = process.hrtime.bigint();
  const r = await spawnCollect("bash", ["-c", script], { cwd: cmd.cwd, env: cmd.env });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const ok = opts.okCodes ?? [0];
  if (!ok.includes(r.code)) {
    throw new Error(
      `command failed (exit ${r.code}): ${script}\n--- stderr ---\n${stripTimeReport(r.stderr).slice(-3000)}`,
    );
  }
  const rss: number[] = [];
  for (const f of reports) {
    rss.push(parseTimeV(await fs.readFile(f, "utf8")).maxRssKb / 1024);
    await fs.rm(f, { force: true });
  }
  const peakRssMb = cmd.kind === "pipe" ? rss.reduce((a, b) => a + b, 0) : Math.max(...rss);
  return { seconds, peakRssMb, stdout: r.stdout, stderr: r.stderr };
}

function stripTimeReport(s: string): string {
  return s.replace(/Command (exited with non-zero status|terminated by signal).*\n/g, "");
}

export interface Spawned {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a program to its end, collecting its output (never throws on a non-zero exit). */
export function spawnCollect(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Run a program and throw, with its stderr, unless it exits 0. */
export async function run(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): Promise<string> {
  const r = await spawnCollect(file, args, opts);
  if (r.code !== 0) {
    throw new Error(`${file} ${args.map(shq).join(" ")} failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  }
  return r.stdout;
}
