import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import type { DestinationSpec } from "../src/config/load.ts";
import { getSet, loadConfig } from "../src/config/load.ts";
import { copySet } from "../src/copy/copy-set.ts";
import type { Destination } from "../src/destination/destination.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { openDestination } from "../src/destination/open.ts";
import { hashCommand, parseSums, shellQuote } from "../src/destination/sftp/digest.ts";
import { SftpSession } from "../src/destination/sftp/session.ts";
import { backupNow } from "../src/ops/backup-now.ts";
import { systemClock } from "../src/platform/clock.ts";
import { isBackupName } from "../src/snapshot/naming.ts";
import { tempDir } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";
import { type SshdServer, sshdMissing, startSshd } from "./helpers/servers/sshd.ts";

/**
 * The sftp destination's storedDigest (src/destination/sftp/digest.ts): the server's own
 * `sha256sum`, one command per backup over the session's connection, file names of any kind;
 * an sftp-only server (no command runs) is read back instead; a file damaged on the server after
 * its put is caught by the check and the copy removed.
 */
const missing = sshdMissing();
const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const NAME = "D_2026_01_02_03_04_05";

test("parseSums: strict sha256sum -z output; anything else is untrusted", () => {
  const h = "a".repeat(64);
  const ok = Buffer.from(`${h}  ./files/it's\0${h.replace(/a/g, "b")} *./files/new\nline\0`);
  assert.deepEqual(
    [...(parseSums(ok) ?? [])],
    [
      ["files/it's", h],
      ["files/new\nline", "b".repeat(64)],
    ],
  );
  assert.deepEqual([...(parseSums(Buffer.alloc(0)) ?? [])], []);
  for (const bad of [
    `${h}  ./x`, // cut short: no NUL
    `${h}  x\0`, // not under ./
    `${h.slice(1)}  ./x\0`, // 63 hex
    `${h.toUpperCase()}  ./x\0`,
    `${h}  ./x\0${h}  ./x\0`, // twice
    `Welcome!\n${h}  ./x\0`, // a banner
    `\\${h}  ./x\0`, // an escaped line (not -z)
  ]) {
    assert.equal(parseSums(Buffer.from(bad)), undefined, JSON.stringify(bad));
  }
  assert.equal(
    parseSums(Buffer.concat([Buffer.from(`${h}  ./`), Buffer.from([0xff]), Buffer.from("\0")])),
    undefined,
  );
  assert.equal(shellQuote("it's -x"), `'it'\\''s -x'`);
  assert.equal(hashCommand("/a b"), "cd -- '/a b' && find . -type f -exec sha256sum -z -- {} +");
});

if (missing) {
  test("sftp storedDigest", { skip: missing }, () => undefined);
} else {
  let server: SshdServer;
  let state: string;
  before(async () => {
    server = await startSshd();
    state = await tempDir("bsched-sftp-digest-state-");
  });
  after(async () => {
    await server?.close();
  });

  const spec = (s: SshdServer, sub: string): DestinationSpec => ({
    name: "vault",
    state,
    config: {
      type: "sftp",
      host: s.host,
      port: s.port,
      user: s.user,
      privateKey: s.privateKeyFile,
      hostKey: s.hostKeyFingerprint,
      path: path.posix.join(s.dir, sub),
      verify: "checksum",
    } as DestinationSpec["config"],
  });

  /** Count the commands the server is asked to run (SftpSession.exec), for the test's duration. */
  function countExecs(t: { after: (fn: () => void) => void }): { n: number } {
    const count = { n: 0 };
    const orig = SftpSession.prototype.exec;
    SftpSession.prototype.exec = function (this: SftpSession, ...a: Parameters<typeof orig>) {
      count.n++;
      return orig.apply(this, a);
    };
    t.after(() => {
      SftpSession.prototype.exec = orig;
    });
    return count;
  }

  test("sftp storedDigest: the server's sha256 of every file, odd names and an odd folder, one command per backup", async (t) => {
    // Quotes, spaces, a leading dash, a newline, a backslash, non-ASCII: in the files and the path.
    const sub = 'it\'s a -dir "x"';
    const d = openDestination(spec(server, sub));
    t.after(async () => {
      await d.close?.();
      await fs.rm(path.join(server.dir, sub), { recursive: true, force: true });
    });
    await d.ready();
    const files: Record<string, string> = {
      "files/it's": "single quote",
      "files/a b  c": "spaces",
      "files/-rf": "a leading dash",
      "files/new\nline": "a newline",
      "files/back\\slash": "a backslash",
      'files/"dq" $HOME `x`': "shell characters",
      "files/sub/é.txt": "unicode",
      "files/empty": "",
    };
    const staging = await d.stage(NAME);
    for (const [f, body] of Object.entries(files)) {
      await staging.put(f, Readable.from([Buffer.from(body)]), Buffer.byteLength(body));
    }
    await staging.publish("{}\n");
    const execs = countExecs(t);
    for (const [f, body] of Object.entries(files)) {
      assert.equal(await d.storedDigest?.(NAME, f), sha(body), f);
    }
    assert.equal(await d.storedDigest?.(NAME, "manifest.json"), sha("{}\n"));
    assert.equal(execs.n, 1, "one command for the whole backup");
    // Asked again (a later check): hashed again from what is stored now, never remembered.
    await fs.writeFile(path.join(server.dir, sub, NAME, "files", "-rf"), "changed on the server");
    assert.equal(await d.storedDigest?.(NAME, "files/-rf"), sha("changed on the server"));
    assert.equal(execs.n, 2);
    assert.equal(await d.storedDigest?.(NAME, "files/missing"), undefined, "a file not there: no digest");
    await assert.rejects(async () => d.storedDigest?.(NAME, "../x"), /not a path inside the backup/);
  });

  /** A primary folder holding one backup of set data (a few files), and the set. */
  async function primary(t: { after: (fn: () => Promise<void>) => void }) {
    const s = await makeServer({ mode: "full" });
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(s.data, "cardholders.db"), Buffer.alloc(300_000, 3));
    await fs.writeFile(path.join(s.data, "events.db"), "events\n");
    const config = loadConfig(s.config, () => undefined);
    const set = getSet(config, "data");
    const r = await backupNow(
      { config, clock: systemClock, progress: () => undefined },
      { set, copy: false },
    );
    return { from: new LocalDestination(s.backups), set, name: r.summary.name };
  }

  /**
   * `d` whose backed-up files' reads are counted in `n` (opening one to learn its size is no
   * read, nor is reading a manifest to list the backup).
   */
  function counting(d: Destination, count: { n: number }): Partial<Destination> {
    return {
      open: async (b, f) => {
        const h = await d.open(b, f);
        if (f === "manifest.json") return h;
        return {
          size: h.size,
          read: (...a) => {
            count.n++;
            return h.read(...a);
          },
          stream: (o) => {
            count.n++;
            return h.stream(o);
          },
          close: () => h.close(),
        };
      },
    };
  }

  /** `d` with some of its methods replaced (the others bound to it: private fields need the real object). */
  function wrap(d: Destination, over: Partial<Destination>): Destination {
    return new Proxy(d, {
      get(target, key, _r) {
        if (key in over) return over[key as keyof Destination];
        const v = Reflect.get(target, key, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  }

  const copyTo = (p: Awaited<ReturnType<typeof primary>>, dest: Destination) =>
    copySet({
      set: p.set,
      from: p.from,
      targets: [{ dest, verify: "checksum" }],
      clock: systemClock,
      timezone: "UTC",
      retry: { attempts: 1, delaysMs: [] },
      prune: false,
    });

  test("sftp checksum: the server's sha256 vouches for the copy, nothing is read back", async (t) => {
    const p = await primary(t);
    const d = openDestination(spec(server, "checked"));
    t.after(() => d.close?.() ?? Promise.resolve());
    const reads = { n: 0 };
    const execs = countExecs(t);
    const [o] = await copyTo(p, wrap(d, counting(d, reads)));
    assert.equal(o?.ok, true, o?.error);
    assert.deepEqual(o?.copied, [p.name]);
    assert.equal(execs.n, 1, "one sha256sum for the backup");
    assert.equal(reads.n, 0, "no file read back from the server");
  });

  test("sftp checksum: a file damaged on the server after its put is caught, COPY_FAILED naming it, the copy removed", async (t) => {
    const p = await primary(t);
    const sub = "damaged";
    const d = openDestination(spec(server, sub));
    t.after(() => d.close?.() ?? Promise.resolve());
    let damaged = false;
    // Between the put and the check: the bytes on the server's disk change (a failing disk, a
    // process writing where it should not). The server's own hash sees what is stored.
    const w = wrap(d, {
      storedDigest: async (b, f, signal) => {
        if (!damaged) {
          damaged = true;
          const stored = path.join(server.dir, sub, b, "files", "cardholders.db");
          const fh = await fs.open(stored, "r+");
          await fh.write(Buffer.from("X"), 0, 1, 1000);
          await fh.close();
        }
        return d.storedDigest?.(b, f, signal);
      },
    });
    const [o] = await copyTo(p, w);
    assert.equal(o?.ok, false);
    assert.equal(o?.code, "COPY_FAILED", o?.error);
    assert.match(o?.error ?? "", /files\/cardholders\.db: the server's sha256 is not the one sent/);
    assert.match(o?.error ?? "", /that copy was removed/);
    assert.deepEqual(
      (await d.names()).filter((n) => isBackupName(n)),
      [],
      "nothing listed as a backup on the server",
    );
  });

  test("sftp checksum on an sftp-only server (no command runs): no server digest, the copy is read back", async (t) => {
    const s = await startSshd({ sftpOnly: true });
    t.after(() => s.close());
    const p = await primary(t);
    const d = openDestination(spec(s, "only"));
    t.after(() => d.close?.() ?? Promise.resolve());
    const reads = { n: 0 };
    const w = wrap(d, counting(d, reads));
    const [o] = await copyTo(p, w);
    assert.equal(o?.ok, true, o?.error);
    assert.equal(await d.storedDigest?.(p.name, "files/events.db"), undefined);
    assert.ok(reads.n >= 2, `every file read back (${reads.n} read)`);
    // Read back, a damaged copy is caught there too.
    await d.remove(p.name);
    let damaged = false;
    const bad = wrap(w, {
      storedDigest: async (b, f, signal) => {
        if (!damaged) {
          damaged = true;
          await fs.writeFile(path.join(s.dir, "only", b, "files", "events.db"), "EVENTS\n");
        }
        return d.storedDigest?.(b, f, signal);
      },
    });
    const [o2] = await copyTo(p, bad);
    assert.equal(o2?.code, "COPY_FAILED", o2?.error);
    assert.match(o2?.error ?? "", /events\.db/);
    assert.deepEqual(
      (await d.names()).filter((n) => isBackupName(n)),
      [],
    );
  });
}
