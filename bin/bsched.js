#!/usr/bin/env node
// Entry point: bsched runs its TypeScript sources directly (Node strips the types), or their
// bundle (dist/cli/, built by `npm ci`) while it is fresh. Start-up is paid by every command and
// every cron line: this file imports nothing Node has not loaded already, and a command loads only
// its own code (docs/design.md "Start-up").
import { readFileSync, statSync } from "node:fs";
import module from "node:module";

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  process.stderr.write(
    `bsched: error: Node.js ${process.versions.node} is too old; bsched needs Node.js 22.15 or later (24 LTS recommended).\n` +
      "  hint: run it as `npx bsched` inside the bsched folder after `npm ci`: that uses the project's own Node 24.\n",
  );
  process.exit(2);
}
if (!process.features.typescript) {
  // Node 22.15–22.17: type stripping exists but is behind a flag.
  const { spawnSync } = await import("node:child_process");
  const r = spawnSync(
    process.execPath,
    ["--experimental-strip-types", "--no-warnings", ...process.argv.slice(1)],
    {
      stdio: "inherit",
    },
  );
  process.exit(r.status ?? 1);
}

const command = process.argv[2];
if (process.argv.length === 3 && (command === "--version" || command === "-V")) {
  // What commander prints for --version, without loading commander or any source.
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  process.stdout.write(`${pkg.version}\n`);
  process.exit(0);
}

/**
 * Commands that read a little and print: they skip the memory flag below (and node:v8), and run
 * from the bundle. The others run from the sources for now (their start-up is small beside their
 * work): the one suite failure they had under the bundle was the window's own race, since fixed
 * (0bbd7f7), and they pass with it, but the whole suite has not been run so since.
 */
const LIGHT = new Set(["list", "status", "next", "history", "config", "init", "secret", "user", "help"]);
const light = command === undefined || command.startsWith("-") || LIGHT.has(command);
if (!light) {
  // Keep V8's young generation at its small initial size: left to grow, it added ~40 MB of peak
  // memory over a backup of 20,000 files for no measurable speed (test/large.test.ts, < 150 MB).
  // Set before the compile cache: V8 rejects code cached under other flags, and Node keeps one
  // cache folder per flag set, so light and heavy commands each reuse their own.
  const v8 = await import("node:v8");
  v8.setFlagsFromString("--semi-space-growth-factor=1");
}
module.enableCompileCache?.();

/**
 * The bundle's entry when dist/cli/inputs.json matches every source it was built from (size and
 * mtime: an edit, a checkout or a pull changes them), else null: the sources run instead.
 */
function freshBundle() {
  // Plain paths, not URLs: a URL per source cost more than its stat.
  const root = `${import.meta.dirname}/..`;
  try {
    const inputs = JSON.parse(readFileSync(`${root}/dist/cli/inputs.json`, "utf8"));
    for (const [file, size, mtimeMs] of inputs.files) {
      const s = statSync(`${root}/${file}`, { throwIfNoEntry: false });
      if (s === undefined || s.size !== size || s.mtimeMs !== mtimeMs) return null;
    }
  } catch {
    return null; // no bundle (never built, being rebuilt, or its record unreadable)
  }
  return new URL("../dist/cli/main.mjs", import.meta.url).href;
}

const { main } = await import((light && freshBundle()) || "../src/cli/main.ts");
process.exitCode = await main(process.argv);
