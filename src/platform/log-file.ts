import fs from "node:fs";

/**
 * The daemon's log file (`server.log.file`, docs/design.md "Logs"): lines appended synchronously
 * (a crash loses no line already logged), rotated by size: when a line would take the file past
 * `maxSize`, `bsched.log` becomes `bsched.log.1`, `.1` becomes `.2`… up to `keep` (the oldest
 * dropped), and a new file starts. A line is never split across two files. Only the daemon writes
 * it (the state folder's lock makes it the only one), so no other process rotates under it.
 */
export interface LogFileOptions {
  file: string;
  /** Bytes: a file is rotated before it would grow past this (a longer single line still gets a file of its own). */
  maxSize: number;
  /** Rotated files kept beside the current one. */
  keep: number;
}

export class RotatingLogFile {
  readonly #opts: LogFileOptions;
  #fd: number;
  #size: number;

  constructor(opts: LogFileOptions) {
    this.#opts = opts;
    this.#fd = fs.openSync(opts.file, "a", 0o640);
    this.#size = fs.fstatSync(this.#fd).size;
  }

  /** pino's destination interface: one call per line (pino ends each with "\n"). */
  write(line: string): boolean {
    const buf = Buffer.from(line);
    if (this.#size > 0 && this.#size + buf.length > this.#opts.maxSize) this.#rotate();
    fs.writeSync(this.#fd, buf);
    this.#size += buf.length;
    return true;
  }

  #rotate(): void {
    const { file, keep } = this.#opts;
    fs.closeSync(this.#fd);
    fs.rmSync(`${file}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) {
      try {
        fs.renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
    }
    fs.renameSync(file, `${file}.1`);
    this.#fd = fs.openSync(file, "a", 0o640);
    this.#size = 0;
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}

const LEVELS: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};

/**
 * One pino JSON line as a person reads it: `2026-12-02T04:00:00.123Z INFO backup finished set=data
 * files=12`. Values that are not plain words are JSON-quoted, so a line stays one line.
 */
export function plainLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith("\n") ? json : `${json}\n`;
  }
  const { level, time, msg, pid: _pid, hostname: _host, ...rest } = o;
  const head = `${String(time ?? "")} ${LEVELS[Number(level)] ?? String(level)} ${String(msg ?? "")}`;
  const fields = Object.entries(rest).map(([k, v]) => {
    const s = typeof v === "string" ? v : JSON.stringify(v);
    return `${k}=${/^[\w./:@+-]*$/.test(s) && s !== "" ? s : JSON.stringify(s)}`;
  });
  return `${[head, ...fields].join(" ")}\n`;
}

/** A destination for pino: a rotating file or a stream (stderr: journald under systemd), JSON or plain. */
export function logDestination(
  opts: { file?: string | undefined; maxSize: number; keep: number; format: "json" | "plain" },
  stream: { write(s: string): unknown } = process.stderr,
): { write(s: string): unknown } {
  const target = opts.file
    ? new RotatingLogFile({ file: opts.file, maxSize: opts.maxSize, keep: opts.keep })
    : stream;
  if (opts.format === "json") return target;
  return { write: (s: string) => target.write(plainLine(s)) };
}
