import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { after, type TestContext, test } from "node:test";
import { loadConfig } from "../src/config/load.ts";
import { makeNotifier, payloadOf } from "../src/notify/notify.ts";
import { decide, NOTIFY_STATE_FILE } from "../src/notify/repeats.ts";
import { systemClock } from "../src/platform/clock.ts";
import { type CliResult, runCli, tempDir } from "./helpers/cli.ts";
import { killDaemons, startDaemon } from "./helpers/daemon-proc.ts";
import { assertNoSecrets, filesUnder, sampleProcessList } from "./helpers/leaks.ts";
import { smtpMissing, startSmtp, type TestSmtp } from "./helpers/smtp.ts";

/*
 * Issue 14 item 2, "Must show": email through a real SMTP server started here (smtp-server on
 * 127.0.0.1, STARTTLS with a throw-away certificate, a login required after the upgrade). The
 * failure, missed, copy-failed and drill-failed messages arrive with the set, the code and the
 * hint; a repeated failure is summarised; a wrong SMTP password is a clear line in the log and
 * the backup still succeeds; the password is never in output, logs, files or any process's argv.
 */

const skip = smtpMissing();
const USER = "bsched-mailer";
const PASSWORD = `smtp-${randomBytes(9).toString("hex")}`;

after(() => killDaemons());

interface Setup {
  dir: string;
  config: string;
  data: string;
  state: string;
  cli(args: string[]): Promise<CliResult>;
}

async function setup(
  t: TestContext,
  smtp: TestSmtp,
  opts: {
    setKeys?: string[];
    serverKeys?: string[];
    password?: string;
    diskWarnPercent?: number;
    security?: string;
    ca?: boolean;
  } = {},
): Promise<Setup> {
  const dir = await tempDir("bsched-email-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const data = path.join(dir, "srv", "Data");
  await fs.mkdir(data, { recursive: true });
  await fs.writeFile(path.join(data, "cards.db"), "cardholders");
  const config = path.join(dir, "bsched.yaml");
  await fs.writeFile(
    config,
    `server:
  root: srv
  timezone: UTC
  web: { enabled: false }
  notify:
    email:
      host: 127.0.0.1
      port: ${smtp.port}
      security: ${opts.security ?? "starttls"}
      user: ${USER}
      password: secret:smtp
      from: "bsched <bsched@example.test>"
      to: [ops@example.test]
${opts.ca === false ? "" : `      ca: ${JSON.stringify(smtp.ca)}\n`}    diskWarnPercent: ${opts.diskWarnPercent ?? 100}
${(opts.serverKeys ?? []).map((k) => `    ${k}\n`).join("")}destinations:
  usb: { type: local, path: ${JSON.stringify(path.join(dir, "unmounted", "Backup"))} }
sets:
  data:
    letter: D
    source: Data
${opts.setKeys?.some((k) => k.startsWith("frequency:")) ? "" : "    frequency: now\n"}${(opts.setKeys ?? []).map((k) => `    ${k}\n`).join("")}`,
  );
  const cli = (args: string[], input?: string) =>
    runCli([...args, "--config", config], { cwd: dir, ...(input === undefined ? {} : { input }) });
  const stored = await cli(["secret", "set", "smtp", "--stdin"], opts.password ?? PASSWORD);
  assert.equal(stored.code, 0, stored.stderr);
  return { dir, config, data, state: path.join(dir, "srv", ".bsched"), cli };
}

/** Every CLI output and every file of the setup (the secret store is encrypted) hold no password. */
async function noPasswordAnywhere(s: Setup, outputs: CliResult[], extra: Record<string, string> = {}) {
  const places: Record<string, string> = { ...extra, ...(await filesUnder(s.dir)) };
  outputs.forEach((r, i) => {
    places[`output ${i} (stdout)`] = r.stdout;
    places[`output ${i} (stderr)`] = r.stderr;
  });
  assertNoSecrets({ "the SMTP password": PASSWORD }, places);
}

test("a failed backup and a failed copy are mailed through STARTTLS with login: set, code, hint, what to do", {
  skip,
}, async (t) => {
  const smtp = await startSmtp({ user: USER, password: PASSWORD, after: (fn) => t.after(fn) });
  const s = await setup(t, smtp, { setKeys: ["copies: [usb]"] });
  const ps = sampleProcessList();
  const outputs: CliResult[] = [];

  // The copy to an unmounted disk fails; the backup itself is kept (exit 3).
  const copied = await s.cli(["backup", "data"]);
  outputs.push(copied);
  assert.equal(copied.code, 3, copied.stderr);
  const [copyMail] = await smtp.waitFor(1);
  assert.ok(copyMail);
  assert.equal(copyMail.secure, true, "upgraded with STARTTLS before anything was sent");
  assert.equal(copyMail.user, USER, "logged in");
  assert.deepEqual(copyMail.to, ["ops@example.test"]);
  assert.equal(copyMail.from, "bsched@example.test");
  assert.match(copyMail.subject, /^\[bsched\] .+: copy of set data to usb FAILED \(DESTINATION_MISSING\)$/);
  assert.match(copyMail.text, /^Set: +data$/m);
  assert.match(copyMail.text, /^Destination: +usb$/m);
  assert.match(copyMail.text, /^Code: +DESTINATION_MISSING$/m);
  assert.match(copyMail.text, /^Hint: +\S/m);
  assert.match(copyMail.text, /bsched copy data --to usb/);
  assert.match(copyMail.html, /<th align="left">Code<\/th><td>DESTINATION_MISSING<\/td>/);

  // The source folder is gone: the backup fails, one message with the code and the hint.
  await fs.rm(s.data, { recursive: true });
  const failed = await s.cli(["backup", "data"]);
  outputs.push(failed);
  assert.equal(failed.code, 1);
  const failMail = (await smtp.waitFor(2))[1];
  assert.ok(failMail);
  assert.match(failMail.subject, /: backup of set data FAILED \(SOURCE_MISSING\)$/);
  assert.match(failMail.text, /^Code: +SOURCE_MISSING$/m);
  assert.match(failMail.text, /^Error: +.*Data/m);
  assert.match(failMail.text, /^Hint: +\S/m);
  assert.match(failMail.text, /What to do:\n {2}- .+\n {2}- then run `bsched backup data`/);
  assert.match(failMail.html, /<h2>backup of set data FAILED<\/h2>/);

  const test = await s.cli(["notify", "test", "--json"]);
  outputs.push(test);
  assert.equal(test.code, 0, test.stderr);
  assert.deepEqual(JSON.parse(test.stdout), [
    { channel: "email", target: `127.0.0.1:${smtp.port} → ops@example.test`, ok: true },
  ]);
  assert.match((await smtp.waitFor(3))[2]?.subject ?? "", /: test message$/);

  await noPasswordAnywhere(s, outputs, { "the process list during the runs": await ps.stop() });
  assert.deepEqual(smtp.refused, []);
});

test("the same failure again is counted, then summarised; a success ends the series", { skip }, async (t) => {
  const smtp = await startSmtp({ user: USER, password: PASSWORD, after: (fn) => t.after(fn) });
  const s = await setup(t, smtp, { setKeys: ["notify: { on: [failure] }"] });
  await fs.rm(s.data, { recursive: true });
  for (let i = 0; i < 3; i++) assert.equal((await s.cli(["backup", "data"])).code, 1);
  await smtp.waitFor(1);
  // Three failures, one message: the two others were counted in the state folder.
  const file = path.join(s.state, NOTIFY_STATE_FILE);
  const state = JSON.parse(await fs.readFile(file, "utf8"));
  const [key, series] = Object.entries(state.series)[0] as [
    string,
    { count: number; unsent: number; sentAt: string },
  ];
  assert.deepEqual(key.split("\u0000"), ["data", "failure", "SOURCE_MISSING", ""]);
  assert.equal(series.count, 3);
  assert.equal(series.unsent, 2);
  assert.equal(smtp.messages.length, 1);

  // The window (6 h by default) has passed since that message: the next one sums the series up.
  series.sentAt = new Date(Date.parse(series.sentAt) - 7 * 3_600_000).toISOString();
  await fs.writeFile(file, JSON.stringify(state));
  assert.equal((await s.cli(["backup", "data"])).code, 1);
  const summary = (await smtp.waitFor(2))[1];
  assert.match(summary?.subject ?? "", /\(SOURCE_MISSING\) - 4 times since \d{4}-/);
  assert.match(summary?.text ?? "", /This happened 4 times since .*at most once per 6 h/);

  // A successful backup ends the series: the next failure is mailed at once, as a first.
  await fs.mkdir(s.data);
  assert.equal((await s.cli(["backup", "data"])).code, 0);
  await fs.rm(s.data, { recursive: true });
  assert.equal((await s.cli(["backup", "data"])).code, 1);
  const again = (await smtp.waitFor(3))[2];
  assert.doesNotMatch(again?.subject ?? "", /times since/);
});

test("security tls (TLS from the first byte) works; a certificate not trusted is a clear error naming ca", {
  skip,
}, async (t) => {
  const tls = await startSmtp({ user: USER, password: PASSWORD, secure: true, after: (fn) => t.after(fn) });
  const s = await setup(t, tls, { security: "tls" });
  const ok = await s.cli(["notify", "test"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(
    ok.stdout,
    new RegExp(`^email: test message sent \\(127\\.0\\.0\\.1:${tls.port} → ops@example\\.test\\)$`, "m"),
  );
  const [mail] = await tls.waitFor(1);
  assert.equal(mail?.secure, true);

  const starttls = await startSmtp({ user: USER, password: PASSWORD, after: (fn) => t.after(fn) });
  const untrusted = await setup(t, starttls, { ca: false });
  const r = await untrusted.cli(["notify", "test", "--json"]);
  assert.equal(r.code, 1);
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, "NOTIFY_FAILED");
  assert.match(err.message, /TLS with the SMTP server 127\.0\.0\.1:\d+ failed: .*certificate/);
  assert.match(err.message, /give the CA that signed it in notify\.email\.ca/);
  assert.equal(starttls.messages.length, 0, "nothing sent over an untrusted connection");
});

test("a wrong SMTP password: a clear warning naming the server and the fix; the backup succeeds", {
  skip,
}, async (t) => {
  const smtp = await startSmtp({ user: USER, password: PASSWORD, after: (fn) => t.after(fn) });
  const wrong = `wrong-${randomBytes(6).toString("hex")}`;
  const s = await setup(t, smtp, { setKeys: ["notify: { on: [success, failure] }"], password: wrong });
  const ok = await s.cli(["backup", "data", "--json"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(JSON.parse(ok.stdout).name, /^D_/);
  assert.match(
    ok.stderr,
    new RegExp(
      `bsched: warning: could not send the success email through the SMTP server 127\\.0\\.0\\.1:${smtp.port}: the SMTP server 127\\.0\\.0\\.1:${smtp.port} refused the login of user ${USER}: .* \\[AUTH_FAILED\\]; check notify\\.email\\.user and the password's secret .*; the backup itself is not affected`,
    ),
  );
  assert.deepEqual(smtp.refused, [USER]);
  assert.equal(smtp.messages.length, 0);
  const list = await s.cli(["list", "data", "--json"]);
  assert.equal(JSON.parse(list.stdout).length, 1, "the backup is there");

  const test = await s.cli(["notify", "test"]);
  assert.equal(test.code, 1);
  assert.match(test.stderr, /refused the login of user bsched-mailer/);
  assert.match(test.stderr, /bsched notify test/);
  assertNoSecrets(
    { "the wrong password": wrong },
    { backup: ok.stderr + ok.stdout, test: test.stderr + test.stdout },
  );
});

test("a real daemon mails the missed slots and logs a refused login clearly; drill_failed has its checks", {
  skip,
}, async (t) => {
  const smtp = await startSmtp({ user: USER, password: PASSWORD, after: (fn) => t.after(fn) });
  const s = await setup(t, smtp, { setKeys: ["frequency: daily", 'time: "04:00"'] });
  const slot = new Date();
  slot.setUTCDate(slot.getUTCDate() + 1);
  slot.setUTCHours(4, 0, 0, 0);
  const d1 = startDaemon(s.config, s.dir, slot.getTime() - 3000);
  await d1.waitLog("backup finished");
  d1.child.kill("SIGTERM");
  assert.equal(await d1.exited, 0);

  // Down for two slots: the daemon runs once now and says so by email (catchUp: once).
  const ps = sampleProcessList();
  const d2 = startDaemon(s.config, s.dir, slot.getTime() + 2 * 86_400_000 + 3_600_000);
  const [missed] = await smtp.waitFor(1);
  await d2.waitLog("backup finished");
  d2.child.kill("SIGTERM");
  assert.equal(await d2.exited, 0);
  assert.match(missed?.subject ?? "", /: set data: 2 scheduled backup\(s\) missed$/);
  assert.match(missed?.text ?? "", /^Missed slots: +2$/m);
  assert.match(missed?.text ?? "", /it runs once now \(catchUp: once\)/);
  assert.ok(d2.log().some((l) => l.msg === "email sent" && l.event === "missed"));

  // The secret changed to a wrong one while stopped: the next daemon's log says what and where.
  const set = await runCli(["secret", "set", "smtp", "--stdin", "--config", s.config], {
    cwd: s.dir,
    input: "not-the-password",
  });
  assert.equal(set.code, 0, set.stderr);
  const d3 = startDaemon(s.config, s.dir, slot.getTime() + 4 * 86_400_000 + 3_600_000);
  const line = await d3.waitFor(
    (l) => typeof l.msg === "string" && l.msg.startsWith("could not send the missed email"),
  );
  await d3.waitLog("backup finished");
  d3.child.kill("SIGTERM");
  assert.equal(await d3.exited, 0);
  assert.equal(line.smtp, `127.0.0.1:${smtp.port}`);
  assert.equal(line.code, "AUTH_FAILED");
  assert.match(
    String(line.msg),
    /refused the login of user bsched-mailer.*bsched secret set NAME.*the run itself is not affected/,
  );
  assert.ok(
    d3.log().some((l) => l.msg === "backup finished"),
    "the backup ran all the same",
  );
  await noPasswordAnywhere(s, [], {
    "daemon logs": [d1, d2, d3].map((d) => JSON.stringify(d.log())).join("\n"),
    "the process list": await ps.stop(),
  });

  // drill_failed, as the restore drill (issue 14 item 1) sends it through the same seam.
  await runCli(["secret", "set", "smtp", "--stdin", "--config", s.config], { cwd: s.dir, input: PASSWORD });
  const config = loadConfig(s.config, () => undefined);
  const notify = makeNotifier({ state: config.state, clock: systemClock });
  const r = await notify(
    config.sets.get("data") as NonNullable<ReturnType<typeof config.sets.get>>,
    payloadOf("data", {
      event: "drill_failed",
      status: "failed",
      destination: "usb",
      backup: "D_2026_12_01_04_00_00",
      error: "cards.db: integrity_check: database disk image is malformed",
      code: "RESTORE_MISMATCH",
      hint: "the backup holds a damaged database: back it up again once the server's database is repaired",
      checks: [
        { name: "digest", ok: true },
        { name: "integrity_check", ok: false, message: "cards.db: database disk image is malformed" },
      ],
    }),
  );
  assert.deepEqual(r, { sent: true, errors: [] });
  const drill = smtp.messages.at(-1);
  assert.match(drill?.subject ?? "", /: restore drill of set data from usb FAILED \(RESTORE_MISMATCH\)$/);
  assert.match(drill?.text ?? "", /^Backup: +D_2026_12_01_04_00_00$/m);
  assert.match(drill?.text ?? "", /FAILED integrity_check: cards\.db: database disk image is malformed/);
  assert.match(drill?.text ?? "", /^Hint: +the backup holds a damaged database/m);
  assert.match(drill?.text ?? "", /bsched drill data --dest usb/);
});

test("disk nearly full: after a backup, its folder's filesystem above diskWarnPercent is mailed", {
  skip,
}, async (t) => {
  const smtp = await startSmtp({ user: USER, password: PASSWORD, after: (fn) => t.after(fn) });
  // 1 %: any filesystem the test runs on is fuller than that.
  const s = await setup(t, smtp, { setKeys: ["notify: { on: [disk_low] }"], diskWarnPercent: 1 });
  assert.equal((await s.cli(["backup", "data"])).code, 0);
  const [mail] = await smtp.waitFor(1);
  assert.match(mail?.subject ?? "", /: set data: backup disk \d+ % full$/);
  assert.match(
    mail?.text ?? "",
    new RegExp(`^Folder: +${path.join(s.dir, "srv", "Backup").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"),
  );
  assert.match(mail?.text ?? "", /^Used: +[\d.]+ % \(threshold 1 %\)$/m);
  assert.match(mail?.text ?? "", /keep fewer backups/);
});

test("the weekly digest: each set's backups, sizes and copies; --print shows it without sending", {
  skip,
}, async (t) => {
  const smtp = await startSmtp({ user: USER, password: PASSWORD, after: (fn) => t.after(fn) });
  const s = await setup(t, smtp, {
    setKeys: ["notify: { on: [] }"],
    serverKeys: ["digest: { day: monday }"],
  });
  assert.equal((await s.cli(["backup", "data"])).code, 0);
  const printed = await s.cli(["notify", "digest", "--print"]);
  assert.equal(printed.code, 0, printed.stderr);
  assert.match(printed.stdout, /Set data: 1 backup\(s\) made, 0 failed/);
  assert.match(printed.stdout, /last drill: no drill recorded/);
  assert.equal(smtp.messages.length, 0);
  const sent = await s.cli(["notify", "digest"]);
  assert.equal(sent.code, 0, sent.stderr);
  const [digest] = await smtp.waitFor(1);
  assert.match(digest?.subject ?? "", /weekly digest - 1 backups, all well$/);
  assert.match(digest?.text ?? "", /kept: 1 \(.*on disk\), newest D_/);
  const state = JSON.parse(await fs.readFile(path.join(s.state, NOTIFY_STATE_FILE), "utf8"));
  assert.match(state.digestAt, /^\d{4}-/);
});

test("the daemon mails the digest at its weekly time, once: a restart does not send it again", {
  skip,
}, async (t) => {
  const smtp = await startSmtp({ user: USER, password: PASSWORD, after: (fn) => t.after(fn) });
  const s = await setup(t, smtp, { serverKeys: ['digest: { day: monday, time: "08:00" }'] });
  const monday = new Date();
  monday.setUTCDate(monday.getUTCDate() + ((8 - monday.getUTCDay()) % 7 || 7));
  monday.setUTCHours(8, 0, 0, 0);
  const d1 = startDaemon(s.config, s.dir, monday.getTime() - 2000);
  const sent = await d1.waitLog("weekly digest sent");
  assert.deepEqual(sent.to, ["ops@example.test"]);
  const [digest] = await smtp.waitFor(1);
  assert.match(digest?.subject ?? "", /weekly digest/);
  d1.child.kill("SIGTERM");
  assert.equal(await d1.exited, 0);
  const d2 = startDaemon(s.config, s.dir, monday.getTime() + 60_000);
  await d2.waitLog("daemon started");
  await new Promise((r) => setTimeout(r, 1500));
  d2.child.kill("SIGTERM");
  assert.equal(await d2.exited, 0);
  assert.equal(smtp.messages.length, 1, "sent once");
});

test("email config: security none only to this machine; a set's email is completed by the server's; plain password warned", async () => {
  const dir = await tempDir("bsched-email-config-");
  try {
    await fs.mkdir(path.join(dir, "srv", "Data"), { recursive: true });
    const file = path.join(dir, "bsched.yaml");
    const write = (notify: string, setNotify = "") =>
      fs.writeFile(
        file,
        `server:\n  root: srv\n  web: { enabled: false }\n${notify}sets:\n  data:\n    letter: D\n    source: Data\n${setNotify}`,
      );
    const check = () => runCli(["config", "show", "--config", file], { cwd: dir });

    await write(
      "  notify:\n    email: { host: smtp.example.com, security: none, from: a@example.com, to: [b@example.com] }\n",
    );
    let r = await check();
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /server\.notify\.email\.security.*only to a server on this machine.*not smtp\.example\.com/,
    );

    await write(
      "  notify:\n    email: { host: localhost, security: none, from: a@example.com, to: [b@example.com] }\n",
    );
    assert.equal((await check()).code, 0);

    await write("", "    notify: { email: { to: [c@example.com] } }\n");
    r = await check();
    assert.equal(r.code, 2);
    assert.match(r.stderr, /sets\.data\.notify\.email\.host/);

    await write(
      "  notify:\n    email: { host: smtp.example.com, user: u, password: plain-one, from: a@example.com, to: [b@example.com] }\n",
      "    notify: { email: { to: [c@example.com] } }\n",
    );
    r = await runCli(["config", "show", "--json", "--config", file], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /server\.notify\.email\.password: a plain secret.*bsched secret set smtp/);
    assert.doesNotMatch(r.stdout + r.stderr, /plain-one/);
    const loaded = loadConfig(file, () => undefined);
    assert.deepEqual(loaded.sets.get("data")?.notify?.email?.to, ["c@example.com"]);
    assert.equal(loaded.sets.get("data")?.notify?.email?.host, "smtp.example.com");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("repeat counting: sent, counted within the window, sent again after it with the whole count", () => {
  const t0 = new Date("2026-12-01T04:00:00Z");
  const hour = 3_600_000;
  const a = decide(undefined, t0, 6 * hour);
  assert.deepEqual(a, {
    send: true,
    next: { since: t0.toISOString(), count: 1, sentAt: t0.toISOString(), unsent: 0 },
  });
  const b = decide(a.next, new Date(t0.getTime() + hour), 6 * hour);
  assert.equal(b.send, false);
  assert.deepEqual([b.next.count, b.next.unsent, b.next.sentAt], [2, 1, t0.toISOString()]);
  const c = decide(b.next, new Date(t0.getTime() + 6 * hour), 6 * hour);
  assert.equal(c.send, true);
  assert.deepEqual([c.next.count, c.next.unsent, c.next.since], [3, 0, t0.toISOString()]);
});
