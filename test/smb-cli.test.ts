import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { runCli, tempDir } from "./helpers/cli.ts";
import { smbdMissing, startSmbd } from "./helpers/servers/smbd.ts";

const skip = smbdMissing();

test("CLI: a set whose folder is an smb destination with the service login: backup, list, verify, restore", {
  skip,
  timeout: 300_000,
}, async (t) => {
  const server = await startSmbd();
  const dir = await tempDir("bsched-smb-cli-");
  t.after(async () => {
    await server.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const data = path.join(dir, "srv", "Data");
  await fs.mkdir(path.join(data, "sub dir"), { recursive: true });
  await fs.writeFile(path.join(data, "cards.db"), Buffer.alloc(300_000, 5));
  await fs.writeFile(path.join(data, "sub dir", 'a "quoted";name.txt'), "quoted\n");
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: UTC
  serviceLogin: { domain: ${server.domain}, user: ${server.user}, password: "${server.password}" }
destinations:
  nas: { type: smb, share: "${server.share}", port: ${server.port}, path: site1, login: service }
sets:
  data:
    letter: D
    source: Data
    mode: incremental
    frequency: now
    folder: nas
`,
  );
  const outputs: string[] = [];
  const cli = async (args: string[]) => {
    const r = await runCli([...args, "--config", config], { cwd: dir, timeoutMs: 120_000 });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const full = await cli(["backup", "data", "--json"]);
  assert.equal(full.code, 0, full.stderr);
  const first = JSON.parse(full.stdout) as { name: string; mode: string };
  assert.equal(first.mode, "full");
  await fs.writeFile(path.join(data, "cards.db"), Buffer.alloc(300_000, 6));
  await fs.writeFile(path.join(data, "new.txt"), "new\n");
  const inc = await cli(["backup", "data", "--json"]);
  assert.equal(inc.code, 0, inc.stderr);
  const second = JSON.parse(inc.stdout) as { name: string; mode: string; parent: string };
  assert.equal(second.mode, "incremental");
  // On the share, as a person browsing it would see it: the same layout as a local folder.
  const site = path.join(server.dir, "site1");
  assert.deepEqual((await fs.readdir(site)).sort(), [first.name, second.name].sort());
  assert.ok((await fs.readdir(path.join(site, first.name))).includes("manifest.json"));

  const list = await cli(["list", "data", "--json"]);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    (JSON.parse(list.stdout) as { name: string }[]).map((b) => b.name),
    [first.name, second.name],
  );
  const verify = await cli(["verify", "data"]);
  assert.equal(verify.code, 0, `${verify.stdout}\n${verify.stderr}`);
  const to = path.join(dir, "restored");
  const restore = await cli(["restore", "data", "--to", to]);
  assert.equal(restore.code, 0, restore.stderr);
  assert.ok((await fs.readFile(path.join(to, "cards.db"))).equals(Buffer.alloc(300_000, 6)));
  assert.equal(await fs.readFile(path.join(to, "new.txt"), "utf8"), "new\n");
  assert.equal(await fs.readFile(path.join(to, "sub dir", 'a "quoted";name.txt'), "utf8"), "quoted\n");
  for (const o of outputs) assert.ok(!o.includes(server.password), "the password is never printed");
});
