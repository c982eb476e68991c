import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import { schemas } from "../src/config/schema.ts";
import { MASK, secretKeysOf, secretLogPaths } from "../src/config/secret-keys.ts";
import type { BschedError } from "../src/core/errors.ts";
import { changeConfig, readConfig, showConfig } from "../src/ops/config.ts";
import { BIN, collect, runCli, tempDir } from "./helpers/cli.ts";
import { assertNoSecrets } from "./helpers/leaks.ts";

const SVC = "Plain-Service-Pw-91";
const S3 = "Plain-S3-Secret-k2";
const LOGIN = "Plain-Own-Login-x7";

/** A config with secrets written plain (warned about), one as a reference, and an S3 access key id. */
const TEXT = `server:
  root: ROOT
  serviceLogin: { domain: CORP, user: svc, password: ${SVC} }
destinations:
  nas: { type: smb, share: //fs/backups, path: site1 }
  nas2:
    type: smb
    share: //fs2/backups
    login: { user: own, password: "${LOGIN}" }   # its own login
  vault: { type: sftp, host: h, user: u, password: "secret:vault", hostKey: "SHA256:${"A".repeat(43)}", path: /srv }
  offsite: { type: s3, bucket: b, accessKeyId: AKIDPLAIN, secretAccessKey: ${S3} }
sets:
  data: { letter: D, source: Data, frequency: now, copies: [nas, nas2, vault, offsite] }
`;

async function configFile(t: TestContext, text = TEXT): Promise<string> {
  const dir = await tempDir("bsched-config-secrets-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "Data"));
  const file = path.join(dir, "bsched.yaml");
  await fs.writeFile(file, text.replace("ROOT", JSON.stringify(dir)));
  return file;
}

function noSecretIn(text: string, what: string): void {
  assertNoSecrets(
    { "the service password": SVC, "the S3 secret key": S3, "nas2's password": LOGIN },
    { [what]: text },
  );
}

test("the secret-valued keys are found in the schema (accessKeyId is an identifier, not one)", () => {
  assert.deepEqual(
    secretKeysOf(schemas().configSchema)
      .map((k) => k.join("."))
      .sort(),
    [
      "destinations.*.login.password",
      "destinations.*.passphrase",
      "destinations.*.password",
      "destinations.*.secretAccessKey",
      "server.metrics.token",
      "server.notify.email.password",
      "server.serviceLogin.password",
      "sets.*.notify.email.password",
    ],
  );
});

test("config show masks every plain secret: text, document and the config as loaded; references and ids shown", async (t) => {
  const file = await configFile(t);
  const shown = showConfig(readConfig(file));
  noSecretIn(shown.text, "text");
  noSecretIn(JSON.stringify(shown.document), "document");
  noSecretIn(JSON.stringify(shown.config), "config as loaded");
  assert.match(shown.text, new RegExp(`password: "${MASK.replaceAll("*", "\\*")}" }\\n`));
  assert.match(shown.text, /password: "secret:vault"/);
  assert.match(shown.text, /accessKeyId: AKIDPLAIN/);
  assert.match(shown.text, /"\*{8}" } {3}# its own login/, "the comment stays");
  const doc = shown.document as { destinations: Record<string, Record<string, unknown>> };
  assert.equal(doc.destinations.offsite?.secretAccessKey, MASK);
  // The sets as loaded carry their copies' configs and the service login: masked too.
  const copies =
    (
      shown.config.sets as Record<
        string,
        { copies: { config: Record<string, unknown>; serviceLogin?: { password: string } }[] }
      >
    ).data?.copies ?? [];
  assert.equal(copies.length, 4);
  assert.equal(copies[0]?.serviceLogin?.password, MASK);
  assert.equal(copies[2]?.config.password, "secret:vault");

  const cli = await runCli(["config", "show", "--config", file]);
  assert.equal(cli.code, 0, cli.stderr);
  const json = await runCli(["config", "show", "--json", "--config", file]);
  assert.equal(json.code, 0, json.stderr);
  for (const r of [cli, json]) {
    noSecretIn(r.stdout + r.stderr, "config show");
  }
});

test("a plain secret loads with a warning naming the key and the `bsched secret set` to run, never the value", async (t) => {
  const file = await configFile(t);
  const { config } = readConfig(file);
  const plain = config.warnings.filter((w) => /a plain secret/.test(w));
  assert.deepEqual(
    plain.map((w) => w.split(":")[0]),
    [
      "server.serviceLogin.password",
      "destinations.nas2.login.password",
      "destinations.offsite.secretAccessKey",
    ],
  );
  assert.match(plain[0] ?? "", /`bsched secret set service` and write `password: secret:service`/);
  assert.match(plain[2] ?? "", /`bsched secret set offsite` and write `secretAccessKey: secret:offsite`/);
  noSecretIn(plain.join("\n"), "warnings");
  // References and the access key id give no warning.
  const clean = await configFile(
    t,
    TEXT.replace(SVC, "secret:service").replace(`"${LOGIN}"`, "secret:nas2").replace(S3, "secret:offsite"),
  );
  assert.deepEqual(
    readConfig(clean).config.warnings.filter((w) => /plain secret/.test(w)),
    [],
  );
});

test("config set of a secret key with a plain value is refused, nothing written; secret:NAME is accepted", async (t) => {
  const file = await configFile(t);
  const before = await fs.readFile(file, "utf8");
  for (const change of [
    { key: "destinations.vault.password", value: "Typed-On-Argv-1" },
    { key: "server.serviceLogin", value: { user: "x", password: "Typed-On-Argv-1" } },
    {
      key: "destinations.new",
      value: { type: "s3", bucket: "b", accessKeyId: "a", secretAccessKey: "Typed-On-Argv-1" },
    },
  ]) {
    await assert.rejects(changeConfig({ file, changes: [change] }), (e: BschedError) => {
      assert.equal(e.code, "USAGE");
      assert.match(
        e.message,
        /holds a secret: bsched does not write its value into the config; nothing was written/,
      );
      assert.match(e.hint ?? "", /bsched secret set \w+/);
      assert.ok(!`${e.message}${e.hint}`.includes("Typed-On-Argv-1"));
      return true;
    });
  }
  assert.equal(await fs.readFile(file, "utf8"), before);

  const cli = await runCli([
    "config",
    "set",
    "destinations.offsite.secretAccessKey",
    "Typed-On-Argv-1",
    "--json",
    "--config",
    file,
  ]);
  assert.equal(cli.code, 2);
  assert.equal(JSON.parse(cli.stdout).error.code, "USAGE");
  assert.ok(!(cli.stdout + cli.stderr).includes("Typed-On-Argv-1"));
  assert.equal(await fs.readFile(file, "utf8"), before);

  const ok = await runCli([
    "config",
    "set",
    "destinations.offsite.secretAccessKey",
    "secret:offsite",
    "--config",
    file,
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(await fs.readFile(file, "utf8"), /secretAccessKey: secret:offsite/);
  noSecretIn(ok.stdout + ok.stderr, "config set");
});

test("a config error never quotes a secret: a bad value, a bad map holding one, a YAML error on its line", async (t) => {
  const cases = [
    TEXT.replace(`password: ${SVC}`, "password: 98765432"),
    TEXT.replace(
      `login: { user: own, password: "${LOGIN}" }`,
      `login: { user: own, password: "${LOGIN}", domain: 7 }`,
    ),
    TEXT.replace(`secretAccessKey: ${S3}`, `secretAccessKey: ${S3}, region: 5`),
    TEXT.replace(`password: "${LOGIN}"`, `password: "${LOGIN}`),
  ];
  for (const text of cases) {
    const file = await configFile(t, text);
    const r = await runCli(["config", "show", "--json", "--config", file]);
    assert.equal(r.code, 2, r.stdout);
    assert.equal(JSON.parse(r.stdout).error.code, "CONFIG_INVALID");
    noSecretIn(r.stdout + r.stderr, "config error");
    assert.ok(!(r.stdout + r.stderr).includes("98765432"));
  }
});

test("the daemon's log redacts secret fields at any depth", () => {
  let written = "";
  const sink = new Writable({
    write(chunk, _enc, done) {
      written += chunk;
      done();
    },
  });
  const log = pino({ redact: { paths: [...secretLogPaths()], censor: MASK } }, sink);
  log.info(
    { password: SVC, dest: { secretAccessKey: S3 }, set: { copies: { config: { passphrase: LOGIN } } } },
    "a config object logged by mistake",
  );
  noSecretIn(written, "log");
  assert.equal((written.match(/\*{8}/g) ?? []).length, 3);
});

test("secret list names the config's references that are not stored; remove warns about one still named", async (t) => {
  const file = await configFile(t);
  const list = await runCli(["secret", "list", "--json", "--config", file]);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout).missing, [{ key: "destinations.vault.password", name: "vault" }]);
  assert.match(
    list.stderr,
    /destinations\.vault\.password names the secret "vault", not stored: `bsched secret set vault`/,
  );

  const child = spawn(process.execPath, [BIN, "secret", "set", "vault", "--stdin", "--config", file], {
    env: {
      ...process.env,
      BSCHED_CONFIG: undefined,
      BSCHED_SECRET_KEY_FILE: undefined,
      CREDENTIALS_DIRECTORY: undefined,
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.end("Stored-Vault-Pw-3");
  const set = await collect(child as never);
  assert.equal(set.code, 0, set.stderr);
  const again = await runCli(["secret", "list", "--json", "--config", file]);
  assert.deepEqual(JSON.parse(again.stdout).missing, []);

  const rm = await runCli(["secret", "remove", "vault", "--config", file]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stderr, /destinations\.vault\.password still names the secret "vault"/);
  for (const r of [list, set, again, rm]) assert.ok(!(r.stdout + r.stderr).includes("Stored-Vault-Pw-3"));
});
