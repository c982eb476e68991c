import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { parse as parseYaml } from "yaml";
import { runCli, tempDir } from "./helpers/cli.ts";

const GOOD = `server:
  root: srv
  timezone: UTC
sets:
  data:
    letter: D
    source: Data
`;

test("init writes the four standard sets with the seed's defaults and refuses to overwrite", async () => {
  const dir = await tempDir();
  const r = await runCli(["init", "--root", "srv"], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const file = path.join(dir, "bsched.yaml");
  const text = await fs.readFile(file, "utf8");
  const doc = parseYaml(text);
  assert.equal(doc.server.root, path.join(dir, "srv"));
  assert.equal(doc.server.backupFolder, "Backup");
  assert.deepEqual(Object.keys(doc.sets), ["data", "archive", "inout", "video"]);
  const expected = {
    data: ["D", "Data"],
    archive: ["A", "Archive"],
    inout: ["T", "Time"],
    video: ["V", "Video"],
  };
  for (const [id, [letter, source]] of Object.entries(expected)) {
    assert.deepEqual(doc.sets[id], {
      letter,
      source,
      automatic: true,
      folder: "default",
      type: "separate",
      mode: "full",
      frequency: "weekly",
      day: "sunday",
      time: "04:00",
    });
  }
  const again = await runCli(["init", "--root", "elsewhere"], { cwd: dir });
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exists/);
  assert.equal(await fs.readFile(file, "utf8"), text, "the existing config is untouched");

  // --config writes elsewhere; the config it writes loads (list works on it).
  const other = path.join(dir, "conf/other.yaml");
  const r2 = await runCli(["init", "--root", "srv", "--config", other], { cwd: dir });
  assert.equal(r2.code, 0, r2.stderr);
  const l = await runCli(["list", "--json", "--config", other], { cwd: dir });
  assert.equal(l.code, 0, l.stderr);
  assert.deepEqual(JSON.parse(l.stdout), []);
  await fs.rm(dir, { recursive: true, force: true });
});

test("lookup order: --config, then $BSCHED_CONFIG, then ./bsched.yaml; relative paths from the config's folder", async () => {
  const dir = await tempDir();
  // Three configs, each with its own root (relative to its own folder) and set id.
  for (const [sub, id] of [
    ["cwd", "fromcwd"],
    ["env", "fromenv"],
    ["flag", "fromflag"],
  ] as const) {
    await fs.mkdir(path.join(dir, sub, "srv/Data"), { recursive: true });
    await fs.writeFile(path.join(dir, sub, "srv/Data/f"), sub);
    await fs.writeFile(
      path.join(dir, sub, "bsched.yaml"),
      GOOD.replace("data:", `${id}:`).replace("letter: D", `letter: ${sub[0]?.toUpperCase()}`),
    );
  }
  const cwd = path.join(dir, "cwd");
  const env = { BSCHED_CONFIG: path.join(dir, "env/bsched.yaml") };
  const flag = path.join(dir, "flag/bsched.yaml");
  const sets = async (args: string[], e?: NodeJS.ProcessEnv) => {
    const r = await runCli(["backup", ...args, "--json"], { cwd, env: e });
    return r;
  };
  let r = await sets(["fromflag", "--config", flag], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).path.startsWith(path.join(dir, "flag/srv/Backup/")), true);
  r = await sets(["fromenv"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).path.startsWith(path.join(dir, "env/srv/Backup/")), true);
  r = await sets(["fromcwd"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).path.startsWith(path.join(dir, "cwd/srv/Backup/")), true);

  // Relative to the config file, not to the working directory.
  const elsewhere = await tempDir();
  const r2 = await runCli(["backup", "fromflag", "--json", "--config", flag], { cwd: elsewhere });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(JSON.parse(r2.stdout).path.startsWith(path.join(dir, "flag/srv/Backup/")), true);

  // A missing config names where it looked and how.
  const none = await runCli(["list"], { cwd: elsewhere });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /bsched\.yaml/);
  assert.match(none.stderr, /bsched init/);
  const missingEnv = await runCli(["list"], {
    cwd: elsewhere,
    env: { BSCHED_CONFIG: "/nonexistent/x.yaml" },
  });
  assert.equal(missingEnv.code, 2);
  assert.match(missingEnv.stderr, /\/nonexistent\/x\.yaml.*\$BSCHED_CONFIG/);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rm(elsewhere, { recursive: true, force: true });
});

const BAD: { name: string; yaml: string; expect: RegExp[] }[] = [
  {
    name: "unknown key",
    yaml: GOOD.replace("    source: Data", "    source: Data\n    frequncy: daily"),
    expect: [/sets\.data/, /frequncy/, /unknown key/],
  },
  {
    name: "bad day for weekly",
    yaml: `${GOOD}    frequency: weekly\n    day: funday\n`,
    expect: [/sets\.data\.day/, /funday/, /monday/, /sunday/],
  },
  {
    name: "a month day for weekly",
    yaml: `${GOOD}    frequency: weekly\n    day: 15\n`,
    expect: [/sets\.data\.day/, /15/, /monday\.\.sunday/],
  },
  {
    name: "bad time",
    yaml: `${GOOD}    time: "25:00"\n`,
    expect: [/sets\.data\.time/, /25:00/, /HH:MM/],
  },
  {
    name: "duplicate letters",
    yaml: `${GOOD}  other:\n    letter: D\n    source: Other\n`,
    expect: [/sets\.other\.letter/, /"D"/, /no other set uses/],
  },
  {
    name: "bad timezone",
    yaml: GOOD.replace("timezone: UTC", "timezone: Mars/Olympus"),
    expect: [/server\.timezone/, /Mars\/Olympus/, /IANA/],
  },
  {
    name: "bad YAML",
    yaml: "server:\n  root: [unclosed\nsets: {}\n",
    expect: [/not valid YAML/],
  },
  {
    name: "bad type",
    yaml: `${GOOD}    type: zip\n`,
    expect: [/sets\.data\.type/, /zip/, /separate/, /compressed/],
  },
  {
    name: "bad letter",
    yaml: GOOD.replace("letter: D", "letter: dd"),
    expect: [/sets\.data\.letter/, /dd/, /A-Z/],
  },
  {
    name: "monthly day 32",
    yaml: `${GOOD}    frequency: monthly\n    day: 32\n`,
    expect: [/sets\.data\.day/, /32/, /1\.\.31/],
  },
  {
    name: "monthly day 0",
    yaml: `${GOOD}    frequency: monthly\n    day: "0"\n`,
    expect: [/sets\.data\.day/, /"0"/, /1\.\.31 or "last"/],
  },
  {
    name: "a day that fits no frequency",
    yaml: `${GOOD}    frequency: daily\n    day: [1]\n`,
    expect: [/sets\.data\.day/, /\[1\]/, /monday\.\.sunday, 1\.\.31 or "last"/],
  },
  {
    name: "relative specific folder",
    yaml: `${GOOD}    folder: backups\n`,
    expect: [/sets\.data\.folder/, /backups/, /absolute/],
  },
  {
    name: "backup folder inside the source",
    yaml: GOOD.replace("timezone: UTC", "timezone: UTC\n  backupFolder: Data/Backup"),
    expect: [/sets\.data/, /Data\/Backup lies inside the source folder/, /outside/],
  },
  {
    name: "state folder inside the source",
    yaml: GOOD.replace("timezone: UTC", "timezone: UTC\n  state: Data/.bsched"),
    expect: [/sets\.data/, /state folder .*Data\/\.bsched.* lies inside the source folder/, /server\.state/],
  },
  {
    name: "missing root",
    yaml: "server:\n  timezone: UTC\nsets: {}\n",
    expect: [/server\.root/, /missing/],
  },
];

for (const bad of BAD) {
  test(`a bad config is refused with exit 2 naming the file, key, value and what is allowed: ${bad.name}`, async () => {
    const dir = await tempDir();
    const file = path.join(dir, "bad.yaml");
    await fs.writeFile(file, bad.yaml);
    const r = await runCli(["list", "--config", file], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(file), `names the file: ${r.stderr}`);
    for (const re of bad.expect) assert.match(r.stderr, re);
    assert.equal(r.stdout, "");
    await fs.rm(dir, { recursive: true, force: true });
  });
}

test("a missing source folder is a clear error at backup time (exit 1), and list still works", async () => {
  const dir = await tempDir();
  const file = path.join(dir, "bsched.yaml");
  await fs.writeFile(file, GOOD);
  const l = await runCli(["list", "--json"], { cwd: dir });
  assert.equal(l.code, 0, l.stderr);
  const r = await runCli(["backup", "data", "--json"], { cwd: dir });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${path.join(dir, "srv/Data")}.*does not exist`));
  assert.match(r.stderr, /sets\.data\.source/);
  assert.equal(JSON.parse(r.stdout).error.code, "SOURCE_MISSING");
  const u = await runCli(["backup", "nosuch"], { cwd: dir });
  assert.equal(u.code, 2);
  assert.match(u.stderr, /unknown set "nosuch".*/);
  assert.match(u.stderr, /known sets: data/);
  await fs.rm(dir, { recursive: true, force: true });
});

test('valid days are accepted: weekly monday, monthly 15, "31" and last', async () => {
  const dir = await tempDir();
  const file = path.join(dir, "ok.yaml");
  await fs.writeFile(
    file,
    `${GOOD}    frequency: weekly\n    day: monday\n  b:\n    letter: B\n    source: B\n    frequency: monthly\n    day: 15\n` +
      `  c:\n    letter: C\n    source: C\n    frequency: monthly\n    day: "31"\n  e:\n    letter: E\n    source: E\n    frequency: monthly\n    day: last\n`,
  );
  const r = await runCli(["list", "--json", "--config", file], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  await fs.rm(dir, { recursive: true, force: true });
});

test("a set with a specific (absolute) folder keeps its backups there, named the same way", async () => {
  const dir = await tempDir();
  const specific = path.join(dir, "elsewhere/backups");
  await fs.mkdir(path.join(dir, "srv/Data"), { recursive: true });
  await fs.mkdir(path.join(dir, "elsewhere")); // the "disk" is mounted: only backups/ is created
  await fs.writeFile(path.join(dir, "srv/Data/f"), "f");
  await fs.writeFile(path.join(dir, "bsched.yaml"), `${GOOD}    folder: ${specific}\n`);
  const r = await runCli(["backup", "data", "--json"], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout);
  assert.equal(path.dirname(b.path), specific);
  assert.match(path.basename(b.path), /^D_\d{4}(_\d{2}){5}$/);
  assert.equal(await fs.stat(path.join(dir, "srv/Backup")).catch(() => undefined), undefined);
  const out = path.join(dir, "out");
  const rr = await runCli(["restore", "data", "--to", out], { cwd: dir });
  assert.equal(rr.code, 0, rr.stderr);
  assert.equal(await fs.readFile(path.join(out, "f"), "utf8"), "f");
  await fs.rm(dir, { recursive: true, force: true });
});
