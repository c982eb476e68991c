import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { openWindow, type WindowFixture } from "../test/helpers/browser.ts";

/*
 * The window on a demo server root with a few backups, for the screenshots (bench/screenshots.ts)
 * and the window's load figures (bench/web-load.ts): the browser tests' fixture (a real
 * `bsched daemon`, an administrator, Chromium), kept until `close`.
 */

export interface DemoWindow extends WindowFixture {
  close(): Promise<void>;
  /** A file appended while read: a backup of Data stays in its copy phase meanwhile. */
  startAppender(): Promise<() => void>;
}

export async function demoWindow(opts: { login?: boolean } = {}): Promise<DemoWindow> {
  const afters: (() => Promise<void>)[] = [];
  const t = {
    after: (fn: () => Promise<void>) => {
      afters.push(fn);
    },
    skip: (why?: string) => {
      throw new Error(`the window cannot be shown here: ${why}`);
    },
  };
  const w = await openWindow(t, {
    login: opts.login ?? true,
    files: {
      "Data/photos/0001.jpg": Buffer.alloc(180_000, 7),
      "Data/photos/0002.jpg": Buffer.alloc(240_000, 9),
      "Data/zz-journal.log": Buffer.alloc(16 << 20, 0x61),
      "Archive/events-2026-10.db": "event\n".repeat(40_000),
    },
  });
  if (!w) throw new Error("the window cannot be shown here");
  const close = async () => {
    for (const fn of afters.reverse()) await fn().catch(() => undefined);
  };
  try {
    // A few backups: two of Data, an archive chain (full, then incremental after a change), In/Out.
    for (const args of [
      ["backup", "data"],
      ["backup", "archive"],
      ["backup", "inout"],
    ]) {
      const r = await w.cli(args);
      if (r.code !== 0 && r.code !== 3) throw new Error(`${args.join(" ")}: ${r.stderr}`);
    }
    await fs.appendFile(path.join(w.root, "Archive", "events-2026-12.db"), "event\n".repeat(200));
    await fs.writeFile(path.join(w.root, "Data", "doors.db"), "doors\n".repeat(520));
    for (const args of [
      ["backup", "archive", "--mode", "incremental"],
      ["backup", "data"],
      // A restore drill of each, so Status shows them proven restorable with their restore time.
      ["drill", "archive"],
      ["drill", "data"],
    ]) {
      const r = await w.cli(args);
      if (r.code !== 0 && r.code !== 3) throw new Error(`${args.join(" ")}: ${r.stderr}`);
    }
  } catch (e) {
    await close();
    throw e;
  }
  const startAppender = async () => {
    const child = spawn(
      process.execPath,
      [
        "-e",
        `const fs=require("node:fs");const fd=fs.openSync(process.argv[1],"a");const p=new Int32Array(new SharedArrayBuffer(4));
         process.stdout.write("go\\n");for(;;){fs.writeSync(fd,"event\\n");Atomics.wait(p,0,0,0.2);}`,
        path.join(w.root, "Data", "zz-journal.log"),
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    await new Promise<void>((r) => child.stdout.once("data", () => r()));
    afters.push(async () => {
      child.kill("SIGKILL");
    });
    return () => child.kill("SIGKILL");
  };
  return { ...w, close, startAppender };
}
