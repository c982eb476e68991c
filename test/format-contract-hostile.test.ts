import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import type { Entry, Manifest } from "../src/core/types.ts";
import { serializeManifest } from "../src/snapshot/manifest.ts";
import { type CliResult, runCli, tempDir } from "./helpers/cli.ts";
import { fileEntry, formatServer, TYPES, type Type } from "./helpers/formats.ts";
import type { TestServer } from "./helpers/server.ts";

/**
 * The format contract, hostile half: a backup folder is untrusted input (docs/design.md "A backup
 * folder is untrusted input"). Every backup type refuses the same forged manifests in restore and
 * names them as damage in verify, and reads its manifest only from a regular file. What each type
 * stores beside the manifest (files/, the .sh) has its own cases in untrusted-stored.test.ts.
 * A hang (a FIFO read) would block the suite: every CLI run here is killed after LIMIT.
 */
const LIMIT = 120_000;

interface Problem {
  backup: string;
  path?: string;
  problem: string;
}

interface Hostile {
  s: TestServer;
  /** A folder nothing may be written to. */
  outside: string;
}

async function setup(
  t: { after(fn: () => Promise<void>): void },
  type: Type,
  mode?: "full",
): Promise<Hostile> {
  const s = await formatServer(type, mode);
  const outside = await tempDir("bsched-outside-");
  t.after(async () => {
    await fs.rm(s.dir, { recursive: true, force: true });
    await fs.rm(outside, { recursive: true, force: true });
  });
  await fs.writeFile(path.join(s.data, "ok.txt"), "fine");
  return { s, outside };
}

function run(s: TestServer, args: string[]): Promise<CliResult> {
  return runCli([...args, "--config", s.config], { cwd: s.dir, timeoutMs: LIMIT });
}

/** Rewrite a backup's manifest.json as an attacker would (the newest link: no child checks its digest). */
async function editManifest(backupDir: string, edit: (m: Manifest) => void): Promise<void> {
  const file = path.join(backupDir, "manifest.json");
  const raw = JSON.parse(await fs.readFile(file, "utf8"));
  const m = { ...raw.header, entries: raw.entries, deletions: raw.deletions } as Manifest;
  edit(m);
  await fs.writeFile(file, serializeManifest(m));
}

const byPath = (m: Manifest) => m.entries.sort((x, y) => (x.path < y.path ? -1 : 1));

async function listAll(dir: string): Promise<string[]> {
  return (await fs.readdir(dir, { recursive: true })).map(String).sort();
}

let targets = 0;

/** restore --from `backupDir` exits 1 with `code`, naming `pattern`, and writes nothing outside. */
async function expectRefused(
  h: Hostile,
  backupDir: string,
  pattern: RegExp,
  code: string | string[] = "UNSAFE_PATH",
) {
  const target = path.join(h.s.dir, `target-${++targets}`);
  const r = await run(h.s, ["restore", "--from", backupDir, "--to", target, "--json"]);
  assert.notEqual(r.code, null, `restore hung: ${r.stderr}`);
  assert.equal(r.code, 1, `refused with exit 1: ${r.stderr}`);
  const got = JSON.parse(r.stdout).error.code;
  assert.ok([code].flat().includes(got), `refused with ${code}, not ${got}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.deepEqual(await listAll(h.outside), [], "nothing written outside the target");
}

/** What a manifest that cannot be read as one is refused with. */
const UNREADABLE_MANIFEST = ["UNSAFE_PATH", "MANIFEST_INVALID"];

/** verify data exits 1 and lists a problem of `backup` matching `pattern`. */
async function expectDamage(s: TestServer, backup: string, pattern: RegExp): Promise<void> {
  const v = await run(s, ["verify", "data", "--json"]);
  assert.notEqual(v.code, null, `verify hung: ${v.stderr}`);
  assert.equal(v.code, 1, v.stdout);
  const problems = (JSON.parse(v.stdout) as { problems: Problem[] }).problems;
  assert.ok(
    problems.some((p) => p.backup === backup && pattern.test(`${p.path ?? ""}: ${p.problem}`)),
    `verify names it: ${JSON.stringify(problems)}`,
  );
}

for (const type of TYPES) {
  test(`format contract (${type}): ../ in an entry or a deletion, and an absolute path, are refused; nothing lands outside`, async (t) => {
    const h = await setup(t, type);
    const b = await h.s.backup();
    const dir = path.join(h.s.backups, b.name);
    // A payload where files/../x would resolve (separate), and a target whose parent is `outside`.
    await fs.writeFile(path.join(dir, "x"), "pwned");
    await editManifest(dir, (m) => m.entries.push(fileEntry("../x", "pwned", b.name)));
    const r = await run(h.s, ["restore", "--from", dir, "--to", path.join(h.outside, "t"), "--json"]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout).error.code, "UNSAFE_PATH");
    assert.match(r.stderr, /"\.\.\/x"/);
    assert.deepEqual(await listAll(h.outside), [], "not even the target was created");
    await fs.rm(path.join(dir, "x"));

    await editManifest(dir, (m) => {
      m.entries = m.entries.filter((e) => e.path !== "../x");
      m.deletions = ["ok/../../y"];
    });
    await expectRefused(h, dir, /ok\/\.\.\/\.\.\/y/);
    await expectDamage(h.s, b.name, /ok\/\.\.\/\.\.\/y/);

    const abs = path.join(h.outside, "abs");
    await editManifest(dir, (m) => {
      m.deletions = [];
      m.entries.push(fileEntry(abs, "pwned", b.name));
      byPath(m);
    });
    await expectRefused(h, dir, /absolute path refused/);
    await expectDamage(h.s, b.name, /absolute path refused/);
  });

  test(`format contract (${type}): a file under a symlink the chain planted is refused; a folder that replaces a restored link writes inside the target`, async (t) => {
    const h = await setup(t, type);
    await fs.symlink(h.outside, path.join(h.s.data, "link"));
    const b1 = await h.s.backup();
    await fs.writeFile(path.join(h.s.data, "ok.txt"), "changed");
    const b2 = await h.s.backup();
    assert.equal(b2.parent, b1.name);
    const dir2 = path.join(h.s.backups, b2.name);
    const original = await fs.readFile(path.join(dir2, "manifest.json"));

    // 1. The newest state keeps `link` as a symlink and puts a file under it.
    await editManifest(dir2, (m) => {
      m.entries.push(fileEntry("link/evil", "pwned", b2.name));
      byPath(m);
    });
    await expectRefused(h, dir2, /"link\/evil" lies under "link", which is a symlink/);
    await expectDamage(h.s, b2.name, /"link\/evil" lies under "link", which is a symlink/);

    // 2. The newest state forgets `link` (so the older backup's link would be the parent). Its
    // manifest lists only changes (format 3): forgetting a path is deleting it.
    await editManifest(dir2, (m) => {
      m.entries = m.entries.filter((e) => e.path !== "link");
      if (m.holds === "changes") m.deletions.push("link");
    });
    await expectRefused(h, dir2, /"link\/evil" lies under "link", which is not in the backup/);
    await fs.writeFile(path.join(dir2, "manifest.json"), original);

    // 3. Genuinely: the link became a folder holding a file. Restored over a target where an
    // earlier restore put the link, the folder replaces the link and the file lands inside.
    const target = path.join(h.s.dir, "target");
    const first = await run(h.s, ["restore", "data", "--to", target, "--backup", b1.name]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await fs.lstat(path.join(target, "link"))).isSymbolicLink(), true);
    await fs.rm(path.join(h.s.data, "link"));
    await fs.mkdir(path.join(h.s.data, "link"));
    await fs.writeFile(path.join(h.s.data, "link/evil"), "inside");
    const b3 = await h.s.backup();
    assert.equal(b3.parent, b2.name);
    const r = await run(h.s, ["restore", "data", "--to", target, "--overwrite"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await fs.lstat(path.join(target, "link"))).isDirectory(), true);
    assert.equal(await fs.readFile(path.join(target, "link/evil"), "utf8"), "inside");
    assert.deepEqual(await listAll(h.outside), [], "nothing written outside the target");
  });

  test(`format contract (${type}): a \`from\` outside the chain or a path, and a parent that is a path, are refused`, async (t) => {
    const h = await setup(t, type);
    const other = await h.s.backup(); // a full that is not part of the next chain
    await fs.writeFile(path.join(h.s.data, "ok.txt"), "v2");
    const b = await h.s.backup(["--mode", "full"]);
    const dir = path.join(h.s.backups, b.name);
    const okEntry = (m: Manifest) => m.entries.find((x) => x.path === "ok.txt") as Entry;
    await editManifest(dir, (m) => {
      okEntry(m).from = other.name;
    });
    await expectRefused(h, dir, new RegExp(`${other.name}.*not part of its chain`));
    await editManifest(dir, (m) => {
      okEntry(m).from = "../../../tmp";
    });
    await expectRefused(h, dir, /damaged or foreign manifest/, "MANIFEST_INVALID");
    await editManifest(dir, (m) => {
      okEntry(m).from = b.name;
      m.parent = { name: "../../outside", digest: "0".repeat(64) };
    });
    await expectRefused(h, dir, /damaged or foreign manifest/, "MANIFEST_INVALID");
  });

  test(`format contract (${type}): verify reports as damage every state restore refuses (a path under a link, a missing folder, a foreign or wrong \`from\`, a path twice)`, async (t) => {
    const h = await setup(t, type);
    const other = await h.s.backup(["--mode", "full"]); // a full outside the next chain
    await fs.writeFile(path.join(h.s.data, "ok.txt"), "v2");
    const b = await h.s.backup(["--mode", "full"]);
    await fs.writeFile(path.join(h.s.data, "ok.txt"), "v3");
    const inc = await h.s.backup();
    assert.equal(inc.parent, b.name);
    const dir = path.join(h.s.backups, b.name);
    const incDir = path.join(h.s.backups, inc.name);
    if (type === "separate") {
      // The stored content sits where a reader that trusts the state would find it, and matches it.
      await fs.mkdir(path.join(dir, "files/a"), { recursive: true });
      await fs.writeFile(path.join(dir, "files/a/passwd"), "root:x");
      await fs.mkdir(path.join(dir, "files/nodir"), { recursive: true });
      await fs.writeFile(path.join(dir, "files/nodir/x"), "x");
    }
    const manifests = [dir, incDir].map((d) => path.join(d, "manifest.json"));
    const originals = await Promise.all(manifests.map((m) => fs.readFile(m)));
    const cases: { what: string; edit: (m: Manifest) => void; pattern: RegExp; code?: string }[] = [
      {
        what: "a file under a symlink of the state",
        edit: (m) => {
          m.entries.push(
            {
              path: "a",
              kind: "symlink",
              mode: 0o777,
              mtimeNs: "1600000000000000000",
              uid: 0,
              gid: 0,
              target: h.outside,
            },
            fileEntry("a/passwd", "root:x", b.name),
          );
          byPath(m);
        },
        pattern: /"a\/passwd" lies under "a", which is a symlink/,
      },
      {
        what: "a file whose folder is missing from the state",
        edit: (m) => {
          m.entries.push(fileEntry("nodir/x", "x", b.name));
          byPath(m);
        },
        pattern: /"nodir\/x" lies under "nodir", which is not in the backup/,
      },
      {
        what: "content from a backup outside the chain",
        edit: (m) => {
          (m.entries.find((x) => x.path === "ok.txt") as Entry).from = other.name;
        },
        pattern: new RegExp(`${other.name}.*not part of its chain`),
      },
      {
        what: "a path listed twice",
        edit: (m) => {
          m.entries.push(m.entries.find((x) => x.path === "ok.txt") as Entry);
        },
        pattern: /listed twice/,
        code: "MANIFEST_INVALID",
      },
    ];
    for (const c of cases) {
      await fs.writeFile(manifests[0] as string, originals[0] as Buffer);
      await editManifest(dir, c.edit);
      await expectRefused(h, dir, c.pattern, c.code);
      await expectDamage(h.s, b.name, c.pattern);
    }
    await fs.writeFile(manifests[0] as string, originals[0] as Buffer);

    // The incremental says its ok.txt is stored in its parent, which stores another version:
    // restore cannot give it back (exit 1), so verify must not call the chain sound.
    await editManifest(incDir, (m) => {
      (m.entries.find((e) => e.path === "ok.txt") as Entry).from = b.name;
    });
    const r = await run(h.s, ["restore", "data", "--to", path.join(h.s.dir, "t-inc")]);
    assert.equal(r.code, 1, r.stderr);
    const v = await run(h.s, ["verify", "data", "--json"]);
    assert.equal(v.code, 1, v.stdout);
    const problems = (JSON.parse(v.stdout) as { problems: Problem[] }).problems;
    assert.ok(
      problems.some((p) => p.backup === inc.name && p.path === "ok.txt" && p.problem.includes(b.name)),
      JSON.stringify(problems),
    );
    await fs.writeFile(manifests[1] as string, originals[1] as Buffer);
    const ok = await run(h.s, ["verify", "data"]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  });

  test(`format contract (${type}): manifest.json a FIFO or a link is refused by restore, reported by verify, noted by list; none hangs`, {
    timeout: 900_000,
  }, async (t) => {
    const h = await setup(t, type, "full");
    const b = await h.s.backup();
    const dir = path.join(h.s.backups, b.name);
    const manifest = path.join(dir, "manifest.json");
    // Outside the backup folder, not in `outside` (which must stay empty).
    const copy = path.join(h.s.dir, "manifest-copy.json");
    await fs.copyFile(manifest, copy);

    await fs.rm(manifest);
    execFileSync("mkfifo", [manifest]);
    await expectRefused(h, dir, /manifest\.json is a FIFO/, UNREADABLE_MANIFEST);
    await expectDamage(h.s, b.name, /manifest\.json is a FIFO/);
    const l = await run(h.s, ["list", "data"]);
    assert.notEqual(l.code, null, "list hung");
    assert.match(l.stdout + l.stderr, new RegExp(`${b.name}.*manifest\\.json is a FIFO`));

    // A link to an identical copy (a reader that followed it would see no damage).
    await fs.rm(manifest);
    await fs.symlink(copy, manifest);
    await expectRefused(h, dir, /manifest\.json is a symlink/, UNREADABLE_MANIFEST);
    await expectDamage(h.s, b.name, /manifest\.json is a symlink/);
  });

  test(`format contract (${type}): a backup folder that is itself a link (an administrator's) is used; what lies inside it is checked`, async (t) => {
    const h = await setup(t, type, "full");
    await fs.mkdir(path.join(h.s.data, "sub"));
    await fs.writeFile(path.join(h.s.data, "sub/small.txt"), "small");
    const b = await h.s.backup();
    const dir = path.join(h.s.backups, b.name);
    const moved = path.join(h.s.dir, b.name);
    await fs.rename(dir, moved);
    await fs.symlink(moved, dir);
    const v = await run(h.s, ["verify", "data", "--json"]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal((JSON.parse(v.stdout) as { files: number }).files, 2);
    const target = path.join(h.s.dir, "target");
    const r = await run(h.s, ["restore", "--from", dir, "--to", target]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fs.readFile(path.join(target, "sub/small.txt"), "utf8"), "small");
  });

  test(`format contract (${type}): a manifest whose set or letter does not match its folder is refused by restore, verify and list`, async (t) => {
    const h = await setup(t, type, "full");
    const b = await h.s.backup();
    const dir = path.join(h.s.backups, b.name);
    const original = await fs.readFile(path.join(dir, "manifest.json"));

    // The folder D_… of set data holds a manifest of set archive.
    await editManifest(dir, (m) => {
      m.set = "archive";
    });
    const l = await run(h.s, ["list", "data", "--json"]);
    assert.equal(l.code, 0, l.stderr);
    // Not a usable backup of set data: listed only as broken, with why.
    assert.deepEqual(
      (JSON.parse(l.stdout) as { name: string; state: string; type: string | null }[]).map((x) => [
        x.name,
        x.state,
        x.type,
      ]),
      [[b.name, "broken", null]],
    );
    assert.match(l.stderr, new RegExp(`${b.name}.*set archive`), "named, not silently skipped");
    const target = path.join(h.s.dir, "t1");
    const r = await run(h.s, ["restore", "data", "--backup", b.name, "--to", target, "--json"]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout).error.code, "MANIFEST_INVALID");
    assert.match(r.stderr, new RegExp(b.name));
    await expectDamage(h.s, b.name, /set archive/);

    // The folder D_… holds a manifest of letter A.
    await fs.writeFile(path.join(dir, "manifest.json"), original);
    await editManifest(dir, (m) => {
      m.letter = "A";
    });
    await expectRefused(h, dir, /letter A/, "MANIFEST_INVALID");
    const v = await run(h.s, ["verify", "--from", dir]);
    assert.equal(v.code, 1, v.stdout);
    assert.match(v.stdout + v.stderr, /letter A/);
    const l2 = await run(h.s, ["list", "data"]);
    assert.match(l2.stdout + l2.stderr, new RegExp(`${b.name}.*letter A`));
  });
}
