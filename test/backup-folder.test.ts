import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { runCli, tempDir } from "./helpers/cli.ts";

/** A server root with set `data` (source srv/Data) and the given extra lines for the set and the server. */
async function setup(opts: { setKeys?: string[]; serverKeys?: string[] } = {}) {
  const dir = await tempDir();
  const data = path.join(dir, "srv/Data");
  await fs.mkdir(data, { recursive: true });
  await fs.writeFile(path.join(data, "f"), "content");
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:\n  root: srv\n  timezone: UTC\n${(opts.serverKeys ?? []).map((k) => `  ${k}\n`).join("")}` +
      `sets:\n  data:\n    letter: D\n    source: Data\n    frequency: now\n` +
      (opts.setKeys ?? []).map((k) => `    ${k}\n`).join(""),
  );
  const cli = (args: string[]) => runCli([...args, "--config", config], { cwd: dir });
  return { dir, data, config, cli };
}

const exists = (p: string) =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );

test("a specific folder whose parent is missing (an unmounted disk) is refused and nothing is created", async (t) => {
  const dir0 = await tempDir();
  t.after(() => fs.rm(dir0, { recursive: true, force: true }));
  const mnt = path.join(dir0, "mnt");
  await fs.mkdir(mnt);
  const usb = path.join(mnt, "usb");
  const folder = path.join(usb, "Backup");
  const s = await setup({ setKeys: [`folder: ${folder}`, "keep: { last: 2 }"] });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));

  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`${folder}.*${usb} does not exist`));
  assert.match(r.stderr, /hint: is the disk mounted\?/);
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, "DESTINATION_MISSING");
  assert.match(err.hint, /mount it on .*usb, or create the folder/);
  assert.equal(await exists(usb), false, "the missing parent was not created");

  // A prune would create the folder to hold its lock: it must not create the parent either.
  const p = await s.cli(["prune", "data", "--json"]);
  assert.equal(p.code, 1, p.stderr);
  assert.equal(JSON.parse(p.stdout).error.code, "DESTINATION_MISSING");
  assert.equal(await exists(usb), false);

  // The disk is "mounted": the folder itself is created, and the backup is made.
  await fs.mkdir(usb);
  const ok = await s.cli(["backup", "data", "--json"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(path.dirname(JSON.parse(ok.stdout).path), folder);
});

test("the default folder <root>/Backup is still created, with a once-per-run same-file-system warning (exit 0)", async (t) => {
  const s = await setup();
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(path.dirname(JSON.parse(r.stdout).path), path.join(s.dir, "srv/Backup"));
  const lines = r.stderr.split("\n").filter((l) => l.includes("[SAME_FILESYSTEM]"));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0] ?? "", /^bsched: warning: .*same file system as the source .*separate places/);
  assert.deepEqual(JSON.parse(r.stdout).warnings, [], "advice, not a warning of the backup");
});

test("a backup or state folder inside the source through a symlink is refused (real paths compared)", async () => {
  const cases = [
    {
      set: ["folder: @DIR@/srv/datalink/bk"],
      server: [],
      re: /backup folder .*datalink\/bk \(really .*srv\/Data\/bk, through a symbolic link\) lies inside the source folder/,
    },
    // The rest of the path need not exist yet: the deepest existing folder is resolved.
    {
      set: ["folder: @DIR@/srv/datalink/new/deeper/bk"],
      server: [],
      re: /datalink\/new\/deeper\/bk \(really .*srv\/Data\/new/,
    },
    { set: [], server: ["backupFolder: datalink/Backup"], re: /backup folder .*really .*Data\/Backup/ },
    {
      set: [],
      server: ["state: datalink/.bsched"],
      re: /state folder .*really .*Data\/\.bsched.* lies inside the source/,
    },
  ];
  for (const c of cases) {
    const y = await setup({ setKeys: c.set, serverKeys: c.server });
    try {
      await fs.symlink("Data", path.join(y.dir, "srv/datalink"));
      await fs.writeFile(y.config, (await fs.readFile(y.config, "utf8")).replaceAll("@DIR@", y.dir));
      const r = await y.cli(["backup", "data", "--json"]);
      assert.equal(r.code, 2, `${c.re}: ${r.stderr}`);
      assert.match(r.stderr, c.re);
      assert.equal(JSON.parse(r.stdout).error.code, "CONFIG_INVALID");
      assert.deepEqual(await fs.readdir(y.data), ["f"], "nothing was written into the source");
    } finally {
      await fs.rm(y.dir, { recursive: true, force: true });
    }
  }
});

test("a file where the backup folder's parent should be is an IO error naming it, not a raw ENOTDIR", async (t) => {
  const s = await setup({ setKeys: ["folder: @DIR@/usb/Backup"] });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  await fs.writeFile(s.config, (await fs.readFile(s.config, "utf8")).replace("@DIR@", s.dir));
  await fs.writeFile(path.join(s.dir, "usb"), "a file, not a mount point");
  const r = await s.cli(["backup", "data", "--json"]);
  assert.equal(r.code, 1, r.stderr);
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, "IO");
  assert.match(err.message, /usb is a file, not a folder/);
  assert.match(err.hint, /sets\.data\.folder/);
});
