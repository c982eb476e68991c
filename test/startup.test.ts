/**
 * Start-up stays cheap (docs/design.md "Start-up"): what each command loads, not how long it takes
 * (timings belong to `npm run bench`, here they would only be noise). And the bundle that makes it
 * cheap is never used once a source it was built from has changed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { localTime } from "../src/cli/local-time.ts";
import { nextRuns, type ScheduleSpec } from "../src/schedule/schedule.ts";
import { zonedParts } from "../src/snapshot/naming.ts";
import { BIN, collect, runCli, tempDir } from "./helpers/cli.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const HOOK = fileURLToPath(new URL("./helpers/loaded-modules.ts", import.meta.url));
const SOURCES = fileURLToPath(new URL("./helpers/cli-sources.ts", import.meta.url));
const VERSION = JSON.parse(await fs.readFile(path.join(REPO, "package.json"), "utf8")).version as string;

/** Packages only the daemon, the window or a remote destination need. */
const HEAVY = ["fastify", "@fastify/", "pino", "@aws-sdk/", "ssh2", "nodemailer", "prom-client", "tar/"];

interface Loaded {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every module URL the process loaded, in order. */
  urls: string[];
}

/** Run `entry` (bin/bsched.js, or the sources' entry) with the module recorder preloaded. */
async function loading(entry: string, args: string[], cwd: string): Promise<Loaded> {
  const out = path.join(await tempDir("bsched-loaded-"), "modules.txt");
  const child = spawn(process.execPath, ["--import", HOOK, entry, ...args], {
    cwd,
    env: { ...process.env, BSCHED_CONFIG: undefined, LOADED_MODULES_FILE: out },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const r = await collect(child);
  const urls = (await fs.readFile(out, "utf8")).split("\n").filter((u) => u !== "");
  return { ...r, urls };
}

/** The project files among `urls`, relative to `root` (builtins, node_modules and the recorder left out). */
function own(urls: string[], root: string): string[] {
  return urls
    .filter((u) => u.startsWith("file:") && !u.includes("/node_modules/"))
    .map((u) => path.relative(root, fileURLToPath(u)))
    .filter((f) => !f.startsWith("test/helpers/"));
}

/** A root with a config (UTC, four sets) and one backup of `data`. */
async function fixture(): Promise<{ dir: string; config: string }> {
  const dir = await tempDir("bsched-startup-");
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  await fs.writeFile(path.join(dir, "srv", "Data", "a.txt"), "hello\n");
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: UTC
sets:
  data: { letter: D, source: Data, frequency: daily, time: "02:30", mode: incremental }
  archive: { letter: A, source: Archive, frequency: weekly, day: sunday, time: "04:00" }
`,
  );
  const r = await runCli(["backup", "data", "--config", config], { cwd: dir });
  assert.ok(r.code === 0 || r.code === 3, r.stderr);
  return { dir, config };
}

test("--version prints the version and loads nothing but bin/bsched.js", async () => {
  for (const flag of ["--version", "-V"]) {
    const r = await loading(BIN, [flag], REPO);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${VERSION}\n`);
    assert.deepEqual(own(r.urls, REPO), ["bin/bsched.js"]);
    assert.deepEqual(
      r.urls.filter((u) => u.includes("/node_modules/")),
      [],
    );
  }
});

test("each command loads its own command file only, and list/status/next none of the heavy packages", async () => {
  const { dir, config } = await fixture();
  for (const command of ["list", "status", "next", "history"]) {
    const r = await loading(SOURCES, [command, "--config", config], dir);
    assert.ok(r.code === 0 || r.code === 3, `${command}: ${r.stderr}`);
    const commands = own(r.urls, REPO).filter((f) => f.startsWith("src/cli/commands/"));
    assert.deepEqual(commands, [`src/cli/commands/${command}.ts`], command);
    if (command !== "history") {
      const heavy = r.urls.filter((u) => HEAVY.some((h) => u.includes(`/node_modules/${h}`)));
      assert.deepEqual(heavy, [], `${command} loads packages it does not need`);
    }
  }
});

test("light commands skip node:v8 (the young-generation flag); backup sets it", async () => {
  const { dir, config } = await fixture();
  const list = await loading(BIN, ["list", "--config", config], dir);
  assert.equal(list.code, 0, list.stderr);
  assert.ok(!list.urls.includes("node:v8"), "list imported node:v8");
  const backup = await loading(BIN, ["backup", "data", "--config", config], dir);
  assert.ok(backup.code === 0 || backup.code === 3, backup.stderr);
  assert.ok(backup.urls.includes("node:v8"), "backup did not set the young-generation flag");
});

test("the bundle runs while fresh, and a changed, touched or missing input makes bin/bsched.js run the sources", async () => {
  // A copy of the project (node_modules linked) with a bundle built in it.
  const root = await tempDir("bsched-bundle-");
  for (const f of ["bin", "build", "src", "package.json"]) {
    await fs.cp(path.join(REPO, f), path.join(root, f), { recursive: true });
  }
  await fs.symlink(await fs.realpath(path.join(REPO, "node_modules")), path.join(root, "node_modules"));
  const build = async () => {
    const child = spawn(process.execPath, [path.join(root, "build", "cli.ts")], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const r = await collect(child);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^bundled \d+ sources into \d+ files in dist\/cli\n$/);
  };
  await build();
  const { dir, config } = await fixture();
  const bin = path.join(root, "bin", "bsched.js");
  const args = ["next", "--from", "2026-03-28T00:00:00Z", "--count", "3", "--json", "--config", config];
  const expected = await loading(SOURCES, args, dir);
  assert.equal(expected.code, 0, expected.stderr);
  const runs = async (what: "bundle" | "sources", why: string) => {
    for (const a of [args, ["list", "--json", "--config", config]]) {
      const r = await loading(bin, a, dir);
      assert.equal(r.code, 0, `${why}: ${r.stderr}`);
      const files = own(r.urls, root);
      if (what === "bundle") {
        assert.ok(files.includes("dist/cli/main.mjs"), `${why}: the bundle was not used`);
        assert.deepEqual(
          files.filter((f) => f.endsWith(".ts")),
          [],
          `${why}: sources loaded`,
        );
      } else {
        assert.ok(files.includes("src/cli/main.ts"), `${why}: the sources were not used`);
        assert.deepEqual(
          files.filter((f) => f.startsWith("dist/")),
          [],
          `${why}: a stale bundle was used`,
        );
      }
      if (a === args) assert.equal(r.stdout, expected.stdout, `${why}: not the sources' output`);
    }
  };
  await runs("bundle", "fresh");

  const source = path.join(root, "src", "snapshot", "naming.ts");
  await fs.appendFile(source, "// edited\n");
  await runs("sources", "a source edited");
  await build();
  await runs("bundle", "rebuilt");

  // Same size, new mtime: a checkout or `touch` is enough to distrust the bundle.
  const later = new Date(Date.now() + 5000);
  await fs.utimes(source, later, later);
  await runs("sources", "a source touched");
  await build();
  await fs.rm(path.join(root, "src", "ops", "list.ts"));
  await fs.copyFile(path.join(REPO, "src", "ops", "list.ts"), path.join(root, "src", "ops", "list.ts"));
  await runs("sources", "a source replaced");
  await build();
  await fs.writeFile(path.join(root, "dist", "cli", "inputs.json"), "{}\n");
  await runs("sources", "an inputs.json without files");
  await fs.rm(path.join(root, "dist", "cli", "inputs.json"));
  await runs("sources", "no inputs.json");
});

test("in CI the CLI the tests run is the bundle npm ci built, and it is fresh", async (t) => {
  if (process.env.BSCHED_TEST_SERVERS !== "required") {
    t.skip("CI only (.ci/run): a developer's bundle may be stale, and is then rightly not used");
    return;
  }
  const { dir, config } = await fixture();
  const r = await loading(BIN, ["list", "--config", config], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(
    own(r.urls, REPO).includes("dist/cli/main.mjs"),
    "bin/bsched.js ran the sources: run `npm run build:cli`",
  );
});

test("bin/bsched runs bsched with the project's Node from a symlink, with no Node on PATH", async () => {
  const dir = await tempDir("bsched-wrapper-");
  const link = path.join(dir, "bsched");
  await fs.symlink(path.join(REPO, "bin", "bsched"), link);
  const child = spawn(link, ["--version"], {
    env: { PATH: "/usr/bin:/bin" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const r = await collect(child);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${VERSION}\n`);
});

test("UTC without time-zone data gives the times and names a UTC+0 zone gives through Intl", () => {
  // Africa/Abidjan: UTC+0 all year since 1912, computed by Intl (and croner's time-zone code).
  const specs: ScheduleSpec[] = [
    { frequency: "hourly", time: "00:17" },
    { frequency: "daily", time: "23:59" },
    { frequency: "weekly", time: "04:00", day: "sunday" },
    { frequency: "monthly", time: "02:30", day: 31 },
    { frequency: "monthly", time: "00:00", day: "last" },
  ];
  let at = new Date("2026-01-01T00:00:00Z");
  for (let i = 0; i < 40; i++) {
    at = new Date(at.getTime() + 7.3 * 86_400_000 + i * 1_234_567);
    for (const spec of specs) {
      const utc = nextRuns(spec, at, "UTC", 3).map((d) => d.toISOString());
      assert.deepEqual(
        utc,
        nextRuns(spec, at, "Africa/Abidjan", 3).map((d) => d.toISOString()),
      );
      assert.deepEqual(
        nextRuns(spec, at, "Etc/UTC", 3).map((d) => d.toISOString()),
        utc,
      );
    }
    assert.deepEqual(zonedParts(at, "UTC"), zonedParts(at, "Africa/Abidjan"));
    assert.equal(localTime(at, "UTC"), localTime(at, "Africa/Abidjan").replace(/GMT$/, "UTC"));
  }
});
