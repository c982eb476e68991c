import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { test } from "node:test";
import { makeServer } from "./helpers/server.ts";
import { webhookReceiver } from "./helpers/webhook.ts";

// Item 2 of issue 10: the webhook hears a manual `bsched backup` as it hears the daemon's runs
// (one path: run → record → prune → notify), when the set's `notify.on` asks for it.

test("a manual backup posts its outcome to the set's webhook; a webhook that is down never fails it", async (t) => {
  const hook = await webhookReceiver({ after: (fn) => t.after(fn) });
  const { posts, port } = hook;
  const srv = await makeServer({
    prefix: "bsched-notify-",
    setKeys: [`notify: { webhook: "http://127.0.0.1:${port}/secret-token", on: [success, failure] }`],
  });
  t.after(() => fs.rm(srv.dir, { recursive: true, force: true }));
  await fs.writeFile(`${srv.data}/a.txt`, "a");

  const ok = await srv.backup();
  assert.deepEqual(
    posts.map((p) => [p.tool, p.event, p.set, p.status, p.planned, p.backup, p.files, p.error]),
    [["bsched", "success", "data", "ok", null, ok.name, 1, null]],
  );

  await fs.rm(srv.data, { recursive: true });
  const failed = await srv.cli(["backup", "data"]);
  assert.equal(failed.code, 1);
  assert.equal(posts.length, 2);
  assert.deepEqual([posts[1]?.event, posts[1]?.status, posts[1]?.backup], ["failure", "failed", null]);
  assert.match(posts[1]?.error ?? "", /source/i);

  // Nothing listens there any more: the backup still succeeds, with a warning naming only the origin.
  await hook.close();
  await fs.mkdir(srv.data);
  await fs.writeFile(`${srv.data}/a.txt`, "b");
  const down = await srv.cli(["backup", "data"]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(
    down.stderr,
    new RegExp(`bsched: warning: could not send the success notification to http://127\\.0\\.0\\.1:${port};`),
  );
  assert.doesNotMatch(down.stderr, /secret-token/);
});
