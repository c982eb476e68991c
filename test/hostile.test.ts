import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import type { Entry, Manifest } from "../src/core/types.ts";
import { serializeManifest } from "../src/snapshot/manifest.ts";
import { tempDir } from "./helpers/cli.ts";
import { makeServer, type TestServer } from "./helpers/server.ts";

/** Rewrite a backup's manifest.json as an attacker would (the newest link: no child checks its digest). */
async function editManifest(backupDir: string, edit: (m: Manifest) => void): Promise<void> {
  const file = path.join(backupDir, "manifest.json");
  const raw = JSON.parse(await fs.readFile(file, "utf8"));
  const m = { ...raw.header, entries: raw.entries, deletions: raw.deletions } as Manifest;
  edit(m);
  await fs.writeFile(file, serializeManifest(m));
}

function fileEntry(p: string, content: string, from: string): Entry {
  return {
    path: p,
    kind: "file",
    mode: 0o644,
    mtimeNs: "1600000000000000000",
    uid: 0,
    gid: 0,
    size: Buffer.byteLength(content),
    sha256: createHash("sha256").update(content).digest("hex"),
    from,
  };
}

async function listAll(dir: string): Promise<string[]> {
  return (await fs.readdir(dir, { recursive: true })).map(String).sort();
}

interface Hostile {
  s: TestServer;
  outside: string;
  target: string;
}

async function setup(): Promise<Hostile> {
  const s = await makeServer();
  const outside = await tempDir("bsched-outside-");
  await fs.writeFile(path.join(s.data, "ok.txt"), "fine");
  return { s, outside, target: path.join(s.dir, "target") };
}

async function expectRefused(h: Hostile, backup: string, pattern: RegExp, code = "UNSAFE_PATH") {
  const r = await h.s.cli(["restore", "--from", path.join(h.s.backups, backup), "--to", h.target, "--json"]);
  assert.equal(r.code, 1, `refused with exit 1: ${r.stderr}`);
  assert.equal(JSON.parse(r.stdout).error.code, code, r.stderr);
  assert.match(r.stderr, pattern);
  assert.deepEqual(await listAll(h.outside), [], "nothing written outside the target");
  return r;
}

async function cleanup(h: Hostile): Promise<void> {
  await fs.rm(h.s.dir, { recursive: true, force: true });
  await fs.rm(h.outside, { recursive: true, force: true });
}

test("an entry path ../x is refused and nothing lands outside", async () => {
  const h = await setup();
  const b = await h.s.backup();
  const dir = path.join(h.s.backups, b.name);
  // The payload sits where files/../x would resolve, and the target's parent is `outside`.
  await fs.writeFile(path.join(dir, "x"), "pwned");
  await editManifest(dir, (m) => m.entries.push(fileEntry("../x", "pwned", b.name)));
  h.target = path.join(h.outside, "target-parent-is-outside");
  const r = await h.s.cli(["restore", "--from", dir, "--to", h.target, "--json"]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(JSON.parse(r.stdout).error.code, "UNSAFE_PATH");
  assert.match(r.stderr, /"\.\.\/x"/);
  assert.deepEqual(await listAll(h.outside), [], "not even the target was created");
  // Also nested and in deletions.
  await editManifest(dir, (m) => {
    m.entries = m.entries.filter((e) => e.path !== "../x");
    m.deletions = ["ok/../../y"];
  });
  h.target = path.join(h.s.dir, "target");
  await expectRefused(h, b.name, /ok\/\.\.\/\.\.\/y/);
  // verify refuses the same manifest and names it (damage, exit 1).
  const v = await h.s.cli(["verify", "data"]);
  assert.equal(v.code, 1);
  assert.match(v.stdout, /ok\/\.\.\/\.\.\/y/);
  await cleanup(h);
});

test("an absolute entry path is refused", async () => {
  const h = await setup();
  const b = await h.s.backup();
  const dir = path.join(h.s.backups, b.name);
  const abs = path.join(h.outside, "abs");
  await fs.mkdir(path.join(dir, "files", path.dirname(abs)), { recursive: true });
  await fs.writeFile(path.join(dir, "files", abs), "pwned");
  await editManifest(dir, (m) => m.entries.push(fileEntry(abs, "pwned", b.name)));
  await expectRefused(h, b.name, /absolute path refused/);
  await cleanup(h);
});

test("a file written through a symlink the chain planted is refused (link kept, dropped, or made a folder)", async () => {
  const h = await setup();
  await fs.symlink(h.outside, path.join(h.s.data, "link"));
  const b1 = await h.s.backup();
  await fs.writeFile(path.join(h.s.data, "ok.txt"), "changed");
  const b2 = await h.s.backup();
  assert.equal(b2.parent, b1.name);
  const dir2 = path.join(h.s.backups, b2.name);
  await fs.mkdir(path.join(dir2, "files/link"), { recursive: true });
  await fs.writeFile(path.join(dir2, "files/link/evil"), "pwned");

  // 1. The newest state keeps `link` as a symlink and puts a file under it.
  await editManifest(dir2, (m) => {
    m.entries.push(fileEntry("link/evil", "pwned", b2.name));
    m.entries.sort((a, b) => (a.path < b.path ? -1 : 1));
  });
  await expectRefused(h, b2.name, /"link\/evil" lies under "link", which is a symlink/);

  // 2. The newest state forgets `link` (so the older backup's link would be the parent).
  await editManifest(dir2, (m) => {
    m.entries = m.entries.filter((e) => e.path !== "link");
  });
  await expectRefused(h, b2.name, /"link\/evil" lies under "link", which is not in the backup/);

  // 3. A restore over a target where an earlier restore planted the link: the folder replaces it.
  const first = await h.s.cli(["restore", "data", "--to", h.target, "--backup", b1.name]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal((await fs.lstat(path.join(h.target, "link"))).isSymbolicLink(), true);
  await editManifest(dir2, (m) => {
    const ok = m.entries.find((e) => e.path === "ok.txt") as Entry;
    m.entries.push({ path: "link", kind: "dir", mode: 0o755, mtimeNs: ok.mtimeNs, uid: 0, gid: 0 });
    m.entries.sort((a, b) => (a.path < b.path ? -1 : 1));
  });
  const r = await h.s.cli(["restore", "--from", dir2, "--to", h.target, "--overwrite"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await fs.lstat(path.join(h.target, "link"))).isDirectory(), true);
  assert.equal(await fs.readFile(path.join(h.target, "link/evil"), "utf8"), "pwned");
  assert.deepEqual(await listAll(h.outside), [], "nothing written outside the target");
  await cleanup(h);
});

test("a `from` naming a backup outside the chain, or a path, is refused", async () => {
  const h = await setup();
  const other = await h.s.backup(); // a separate full: not part of the next chain
  await fs.writeFile(path.join(h.s.data, "ok.txt"), "v2");
  const b = await h.s.backup(["--mode", "full"]);
  const dir = path.join(h.s.backups, b.name);
  await editManifest(dir, (m) => {
    const e = m.entries.find((x) => x.path === "ok.txt") as Entry;
    e.from = other.name;
  });
  await expectRefused(h, b.name, new RegExp(`${other.name}.*not part of its chain`));

  await editManifest(dir, (m) => {
    const e = m.entries.find((x) => x.path === "ok.txt") as Entry;
    e.from = "../../../tmp";
  });
  await expectRefused(h, b.name, /damaged or foreign manifest/, "MANIFEST_INVALID");

  // A parent reference that is a path, not a backup name, is refused too.
  await editManifest(dir, (m) => {
    m.parent = { name: "../../outside", digest: "0".repeat(64) };
  });
  await expectRefused(h, b.name, /damaged or foreign manifest/, "MANIFEST_INVALID");
  await cleanup(h);
});

test("a symlink planted inside a backup's files/ folder is not read through", async () => {
  const h = await setup();
  await fs.mkdir(path.join(h.s.data, "sub"));
  await fs.writeFile(path.join(h.s.data, "sub/secret"), "the backed-up content");
  const b = await h.s.backup();
  // The attacker swaps the stored folder for a link to a folder holding another "secret".
  await fs.writeFile(path.join(h.outside, "secret"), "a file from outside the backup");
  const stored = path.join(h.s.backups, b.name, "files/sub");
  await fs.rm(stored, { recursive: true });
  await fs.symlink(h.outside, stored);
  const r = await h.s.cli(["restore", "data", "--to", h.target]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /sub\/secret/);
  const restored = await fs.readFile(path.join(h.target, "sub/secret"), "utf8").catch(() => "(absent)");
  assert.notEqual(
    restored,
    "a file from outside the backup",
    "content from outside the backup is not restored",
  );
  assert.deepEqual(await listAll(h.outside), ["secret"], "and nothing was written there");
  const v = await h.s.cli(["verify", "data"]);
  assert.equal(v.code, 1);
  assert.match(v.stdout, /sub\/secret/);
  await cleanup(h);
});

interface Problem {
  backup: string;
  path?: string;
  problem: string;
}

test("verify reports as damage every state restore refuses: a path under a link, a missing parent folder, a foreign or wrong `from`", async (t) => {
  const h = await setup();
  t.after(() => cleanup(h));
  const other = await h.s.backup(["--mode", "full"]); // a full outside the next chain
  await fs.writeFile(path.join(h.s.data, "ok.txt"), "v2");
  const b = await h.s.backup(["--mode", "full"]);
  await fs.writeFile(path.join(h.s.data, "ok.txt"), "v3");
  const inc = await h.s.backup();
  assert.equal(inc.parent, b.name);
  const dir = path.join(h.s.backups, b.name);
  const incDir = path.join(h.s.backups, inc.name);
  // The stored content sits where a reader that trusts the state would find it, and matches it.
  await fs.mkdir(path.join(dir, "files/a"), { recursive: true });
  await fs.writeFile(path.join(dir, "files/a/passwd"), "root:x");
  await fs.mkdir(path.join(dir, "files/nodir"), { recursive: true });
  await fs.writeFile(path.join(dir, "files/nodir/x"), "x");
  const manifests = [dir, incDir].map((d) => path.join(d, "manifest.json"));
  const originals = await Promise.all(manifests.map((m) => fs.readFile(m)));
  const sorted = (m: Manifest) => m.entries.sort((x, y) => (x.path < y.path ? -1 : 1));
  const cases: { what: string; at: string; edit: (m: Manifest) => void; pattern: RegExp; code?: string }[] = [
    {
      what: "a file under a symlink of the state",
      at: dir,
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
        sorted(m);
      },
      pattern: /"a\/passwd" lies under "a", which is a symlink/,
    },
    {
      what: "a file whose folder is missing from the state",
      at: dir,
      edit: (m) => {
        m.entries.push(fileEntry("nodir/x", "x", b.name));
        sorted(m);
      },
      pattern: /"nodir\/x" lies under "nodir", which is not in the backup/,
    },
    {
      what: "content from a backup outside the chain",
      at: dir,
      edit: (m) => {
        (m.entries.find((x) => x.path === "ok.txt") as Entry).from = other.name;
      },
      pattern: new RegExp(`${other.name}.*not part of its chain`),
    },
    {
      what: "a path listed twice",
      at: dir,
      edit: (m) => {
        m.entries.push(m.entries.find((x) => x.path === "ok.txt") as Entry);
      },
      pattern: /listed twice/,
      code: "MANIFEST_INVALID",
    },
  ];
  for (const c of cases) {
    await fs.writeFile(manifests[0] as string, originals[0] as Buffer);
    await editManifest(c.at, c.edit);
    await expectRefused(h, b.name, c.pattern, c.code);
    const v = await h.s.cli(["verify", "data", "--json"]);
    assert.equal(v.code, 1, `${c.what}: ${v.stdout}`);
    const problems = (JSON.parse(v.stdout) as { problems: Problem[] }).problems;
    assert.ok(
      problems.some((p) => p.backup === b.name && c.pattern.test(p.problem)),
      `${c.what}: ${JSON.stringify(problems)}`,
    );
  }
  await fs.writeFile(manifests[0] as string, originals[0] as Buffer);

  // The incremental says its ok.txt is stored in its parent, which stores another version:
  // restore cannot give it back (exit 1), so verify must not call the chain sound.
  await editManifest(incDir, (m) => {
    (m.entries.find((x) => x.path === "ok.txt") as Entry).from = b.name;
  });
  const r = await h.s.cli(["restore", "data", "--to", h.target]);
  assert.equal(r.code, 1, r.stderr);
  const v = await h.s.cli(["verify", "data", "--json"]);
  assert.equal(v.code, 1, v.stdout);
  const problems = (JSON.parse(v.stdout) as { problems: Problem[] }).problems;
  assert.ok(
    problems.some((p) => p.backup === inc.name && p.path === "ok.txt" && p.problem.includes(b.name)),
    JSON.stringify(problems),
  );
  await fs.writeFile(manifests[1] as string, originals[1] as Buffer);
  const ok = await h.s.cli(["verify", "data"]);
  assert.equal(ok.code, 0, ok.stderr);
});
