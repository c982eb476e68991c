import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { type TestContext, test } from "node:test";
import { changeConfig, hashText, MASK, readConfig, showConfig } from "../src/ops/config.ts";
import { runCli, tempDir } from "./helpers/cli.ts";

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync("setpriv", ["--version"]).status === 0;

/** A config as a person writes it: aligned comments, blank lines, block and flow maps, quoting. */
const TEXT = `# bsched on the front-desk server
server:
  root: srv                 # the server root
  timezone: "UTC"           # keep UTC: the logs are in UTC

sets:
  data:
    letter: D               # cardholders
    source: Data
    time: "04:00"           # before the first shift
    keep:
      last: 8               # a week and a day
      weekly: 4
    # video: its own disk, see below
  video: { letter: V, source: Video, automatic: false, keep: { last: 2 } }   # on demand
# end of file
`;

async function configFile(t: TestContext, text = TEXT): Promise<string> {
  const dir = await tempDir("bsched-config-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
  await fs.mkdir(path.join(dir, "srv", "Video"), { recursive: true });
  const file = path.join(dir, "bsched.yaml");
  await fs.writeFile(file, text);
  return file;
}

test("set and unset change only the key's bytes: every comment, blank line and alignment stays", async (t) => {
  const file = await configFile(t);
  const cases: [Parameters<typeof changeConfig>[0]["changes"], string][] = [
    // An existing scalar: only its value's bytes (quoting kept).
    [[{ key: "server.timezone", value: "Europe/Paris" }], TEXT.replace('"UTC"', '"Europe/Paris"')],
    [[{ key: "sets.data.keep.last", value: 10 }], TEXT.replace("last: 8", "last: 10")],
    // A new key in a block map: one line after its last key, at its indentation.
    [
      [{ key: "sets.data.keep.daily", value: 7 }],
      TEXT.replace("      weekly: 4\n", "      weekly: 4\n      daily: 7\n"),
    ],
    // A new key in a flow map, and a new map under an existing one.
    [
      [{ key: "sets.video.keep.daily", value: 3 }],
      TEXT.replace("keep: { last: 2 }", "keep: { last: 2, daily: 3 }"),
    ],
    [
      [{ key: "sets.data.hooks.before", value: "sync; echo done" }],
      TEXT.replace("      weekly: 4\n", "      weekly: 4\n    hooks: { before: sync; echo done }\n"),
    ],
    // Removing: the key's line (with its own comment) goes, the lines around it stay.
    [
      [{ key: "sets.data.time", unset: true }],
      TEXT.replace('    time: "04:00"           # before the first shift\n', ""),
    ],
    [[{ key: "sets.video.automatic", unset: true }], TEXT.replace(" automatic: false,", "")],
    [
      [{ key: "sets.data.keep", unset: true }],
      TEXT.replace("    keep:\n      last: 8               # a week and a day\n      weekly: 4\n", ""),
    ],
  ];
  for (const [changes, want] of cases) {
    await fs.writeFile(file, TEXT);
    const r = await changeConfig({ file, changes });
    assert.equal(r.changed, true);
    assert.equal(await fs.readFile(file, "utf8"), want, JSON.stringify(changes));
    assert.equal(r.text, want);
    assert.equal(r.hash, hashText(want));
  }
  // A file with CRLF line ends gets CRLF lines.
  const crlf = TEXT.replaceAll("\n", "\r\n");
  await fs.writeFile(file, crlf);
  await changeConfig({ file, changes: [{ key: "sets.data.keep.daily", value: 7 }] });
  assert.equal(
    await fs.readFile(file, "utf8"),
    crlf.replace("      weekly: 4\r\n", "      weekly: 4\r\n      daily: 7\r\n"),
  );
  // A config reached through a symbolic link: the file it points to changes, the link stays.
  await fs.writeFile(file, TEXT);
  const link = path.join(path.dirname(file), "link.yaml");
  await fs.symlink(file, link);
  await changeConfig({ file: link, changes: [{ key: "server.timezone", value: "Europe/Paris" }] });
  assert.ok((await fs.lstat(link)).isSymbolicLink());
  assert.equal(await fs.readFile(file, "utf8"), TEXT.replace('"UTC"', '"Europe/Paris"'));
  await fs.rm(link);
  // The loaded config follows.
  await fs.writeFile(file, TEXT);
  const r = await changeConfig({ file, changes: [{ key: "sets.data.keep.daily", value: 7 }] });
  assert.deepEqual(r.config.sets.get("data")?.keep, { last: 8, weekly: 4, daily: 7 });
  // Setting what is already there, or removing what is absent, writes nothing.
  const same = await changeConfig({ file, changes: [{ key: "sets.data.keep.daily", value: 7 }] });
  const absent = await changeConfig({ file, changes: [{ key: "server.state", unset: true }] });
  assert.deepEqual([same.changed, absent.changed], [false, false]);
});

test("a value the schema refuses is refused with the schema's message, and the file is left as it was", async (t) => {
  const file = await configFile(t);
  const before = await fs.stat(file);
  for (const [change, message] of [
    [{ key: "sets.data.keep.daily", value: -1 }, /sets\.data\.keep\.daily: got -1; allowed: .*>=0/],
    [
      { key: "sets.data.frequency", value: "fortnightly" },
      /sets\.data\.frequency: got "fortnightly"; allowed: one of/,
    ],
    [{ key: "sets.data.colour", value: "red" }, /sets\.data: unknown key\(s\) "colour"/],
    [{ key: "sets.data.letter", unset: true }, /sets\.data\.letter: missing/],
  ] as const) {
    await assert.rejects(
      changeConfig({ file, changes: [change] }),
      (e: Error & { code?: string; hint?: string }) =>
        e.code === "CONFIG_INVALID" && message.test(e.message) && /nothing was written/.test(e.hint ?? ""),
    );
  }
  assert.equal(await fs.readFile(file, "utf8"), TEXT);
  assert.equal((await fs.stat(file)).mtimeMs, before.mtimeMs);
  assert.deepEqual(
    (await fs.readdir(path.dirname(file))).sort(),
    ["bsched.yaml", "srv"],
    "no temporary file left",
  );
});

test("a change based on a read the file has since moved past is refused; the other change is kept", async (t) => {
  const file = await configFile(t);
  const read = readConfig(file);
  assert.equal(read.hash, hashText(TEXT));
  // Someone else (an editor, another window) changes the file after our read.
  const theirs = TEXT.replace("last: 8 ", "last: 9 ");
  await fs.writeFile(file, theirs);
  await assert.rejects(
    changeConfig({ file, expectedHash: read.hash, changes: [{ key: "sets.data.keep.daily", value: 7 }] }),
    (e: Error & { code?: string; hint?: string }) =>
      e.code === "CONFIG_CHANGED" && e.message.includes(file) && /read it again/.test(e.hint ?? ""),
  );
  assert.equal(await fs.readFile(file, "utf8"), theirs);
  // Based on a fresh read, it goes through.
  const again = readConfig(file);
  const r = await changeConfig({
    file,
    expectedHash: again.hash,
    changes: [{ key: "sets.data.keep.daily", value: 7 }],
  });
  assert.equal(r.changed, true);
  assert.match(await fs.readFile(file, "utf8"), /last: 9 [^\n]*\n {6}weekly: 4\n {6}daily: 7\n/);
});

test("show: the text as on disk and the config as loaded; a secret key's value is masked, a secret: reference is not", async (t) => {
  const file = await configFile(t);
  const shown = showConfig(readConfig(file));
  assert.equal(shown.text, TEXT);
  assert.equal(
    (shown.config.sets as Record<string, { source: string }>).data?.source,
    path.join(path.dirname(file), "srv", "Data"),
  );
  // The next issue's secret keys (destinations.*.password): masked in the text and the document.
  const withSecrets = `${TEXT}destinations:\n  nas: { password: "hunter2" }   # oops, inline\n  vault: { password: secret:vault }\n  s3:\n    password: [a, b]\n`;
  const masked = showConfig({ ...readConfig(file), text: withSecrets }, [["destinations", "*", "password"]]);
  assert.doesNotMatch(masked.text, /hunter2/);
  assert.equal(
    masked.text,
    withSecrets.replace('"hunter2"', `"${MASK}"`).replace("password: [a, b]", `password: "${MASK}"`),
  );
  assert.deepEqual((masked.document as { destinations: unknown }).destinations, {
    nas: { password: MASK },
    vault: { password: "secret:vault" },
    s3: { password: MASK },
  });
});

test("bsched config show / set / unset through the CLI", async (t) => {
  const file = await configFile(t);
  const cli = (args: string[]) => runCli([...args, "--config", file], { cwd: path.dirname(file) });
  const show = await cli(["config", "show"]);
  assert.equal(show.code, 0, show.stderr);
  assert.equal(show.stdout, TEXT);
  const set = await cli(["config", "set", "sets.data.keep", "{ last: 8, daily: 7 }"]);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /sets\.data\.keep = \{"last":8,"daily":7\}/);
  const json = JSON.parse((await cli(["config", "show", "--json"])).stdout);
  assert.deepEqual(json.config.sets.data.keep, { last: 8, daily: 7 });
  assert.equal(json.hash, hashText(json.text));
  const bad = await cli(["config", "set", "sets.data.time", "25:00", "--json"]);
  assert.equal(bad.code, 2);
  assert.equal(JSON.parse(bad.stdout).error.code, "CONFIG_INVALID");
  assert.match(JSON.parse(bad.stdout).error.message, /sets\.data\.time: got "25:00"/);
  const unset = await cli(["config", "unset", "sets.data.time", "--json"]);
  assert.equal(unset.code, 0, unset.stderr);
  assert.equal(JSON.parse(unset.stdout).changed, true);
  assert.equal(
    await fs.readFile(file, "utf8"),
    TEXT.replace('    time: "04:00"           # before the first shift\n', "").replace(
      "    keep:\n      last: 8               # a week and a day\n      weekly: 4\n",
      "    keep: { last: 8, daily: 7 }\n",
    ),
  );
});

test("a config file the user may not write: PERMISSION_DENIED naming the file, nothing written", {
  skip: isRoot && !hasSetpriv ? "runs as root and setpriv is missing" : false,
}, async (t) => {
  const file = await configFile(t);
  const dir = path.dirname(file);
  await fs.chmod(file, 0o444);
  const wrap = isRoot ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"] : [];
  if (isRoot) {
    // nobody may write the folder (a rename would replace the file) but not the file itself.
    await fs.chmod(dir, 0o755);
    spawnSync("chown", ["-R", `${NOBODY}:${NOBODY}`, dir]);
    spawnSync("chown", ["0:0", file]);
  }
  const r = await runCli(["config", "set", "sets.data.keep.daily", "7", "--json", "--config", file], {
    cwd: dir,
    wrap,
    env: { NODE_COMPILE_CACHE: undefined },
  });
  assert.equal(r.code, 1, r.stderr);
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, "PERMISSION_DENIED", r.stdout);
  assert.ok(err.message.includes(file), err.message);
  assert.match(err.hint, /access to/);
  assert.equal(await fs.readFile(file, "utf8"), TEXT);
});
