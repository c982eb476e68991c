import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { type DrillJson, damageCardsDb, writeCardsDb } from "./helpers/drill.ts";
import { makeServer } from "./helpers/server.ts";
import { sshdMissing, startSshd } from "./helpers/servers/sshd.ts";
import { webhookReceiver } from "./helpers/webhook.ts";

// Issue 14 item 1: a drill from a remote destination (OpenSSH's SFTP on loopback) reads the
// copies there through the same path as `restore --dest`, and proves them, or not, on their own.

test("a drill from an sftp destination restores the copies there, checks them and records them under its name", {
  timeout: 600_000,
}, async (t) => {
  const why = sshdMissing();
  if (why) {
    t.skip(why);
    return;
  }
  const hook = await webhookReceiver({ after: (fn) => t.after(fn) });
  const s = await makeServer({
    prefix: "bsched-drill-sftp-",
    setKeys: [
      "copies: [vault]",
      `notify: { webhook: "${hook.url("/hook")}" }`,
      "drill: { from: [local, vault], scratch: ../scratch }",
    ],
  });
  t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
  const sshd = await startSshd();
  t.after(() => sshd.close());
  await fs.appendFile(
    s.config,
    `destinations:
  vault:
    type: sftp
    host: ${sshd.host}
    port: ${sshd.port}
    user: ${sshd.user}
    privateKey: ${sshd.privateKeyFile}
    hostKey: "${sshd.hostKeyFingerprint}"
    path: ${sshd.dir}/backups
    attempts: 1
`,
  );
  const db = path.join(s.data, "cards.db");
  await writeCardsDb(db);
  const first = await s.backup();
  await writeCardsDb(db, 350);
  const second = await s.backup();

  const r = await s.cli(["drill", "data", "--dest", "vault", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as DrillJson;
  assert.deepEqual(
    out.drills.map((d) => [d.destination, d.backup, d.pick, d.ok, d.checks.map((c) => c.name)]),
    [
      ["vault", second.name, "newest", true, ["restore", "sqlite cards.db"]],
      ["vault", first.name, "older", true, ["restore", "sqlite cards.db"]],
    ],
  );
  assert.ok(out.drills.every((d) => typeof d.restoreMs === "number"));

  // A damaged database reaches the vault as faithfully as the folder: both places fail, each notified.
  await damageCardsDb(db);
  const third = await s.backup();
  const both = await s.cli(["drill", "data", "--json"]);
  assert.equal(both.code, 1, both.stderr);
  const res = JSON.parse(both.stdout) as DrillJson;
  assert.deepEqual(
    res.drills.filter((d) => d.pick === "newest").map((d) => [d.destination, d.backup, d.ok, d.errorCode]),
    [
      ["local", third.name, false, "DRILL_FAILED"],
      ["vault", third.name, false, "DRILL_FAILED"],
    ],
  );
  assert.deepEqual(
    hook.posts.filter((p) => p.backup === third.name).map((p) => [p.event, p.destination]),
    [
      ["drill_failed", "local"],
      ["drill_failed", "vault"],
    ],
  );
  assert.deepEqual(await fs.readdir(path.join(s.dir, "scratch")), []);
});
