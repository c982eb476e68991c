import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import type { DestinationSpec } from "../src/config/load.ts";
import { copyBackup } from "../src/copy/copy-backup.ts";
import { LocalDestination } from "../src/destination/local/local.ts";
import { SmbDestination } from "../src/destination/smb/smb.ts";
import { isBackupName } from "../src/snapshot/naming.ts";
import { verifyBackups } from "../src/verify/verify.ts";
import { tempDir } from "./helpers/cli.ts";
import { makeServer } from "./helpers/server.ts";
import { freePort } from "./helpers/servers/need.ts";
import { type SmbServer, smbdMissing, startSmbd } from "./helpers/servers/smbd.ts";

const skip = smbdMissing();
const D1 = "D_2026_12_06_04_00_00";

function specOf(
  server: SmbServer,
  state: string,
  sub: string,
  over: { share?: string; port?: number; password?: string } = {},
): DestinationSpec {
  return {
    name: "nas",
    state,
    config: {
      type: "smb",
      share: over.share ?? server.share,
      port: over.port ?? server.port,
      path: sub,
      login: { domain: server.domain, user: server.user, password: over.password ?? server.password },
      verify: "read",
    },
  };
}

const backups = async (d: SmbDestination) => (await d.names()).filter((n) => isBackupName(n));

/** The session folders smbclient's authentication files live in (os.tmpdir()/bsched-smb-*). */
async function sessionDirs(): Promise<string[]> {
  return (await fs.readdir(os.tmpdir())).filter((n) => /^bsched-smb-[A-Za-z0-9]{6}$/.test(n));
}

async function psArgs(): Promise<string> {
  return (await promisify(execFile)("ps", ["-eo", "args"], { maxBuffer: 1 << 24 })).stdout;
}

function rejectsCode(code: string, ...mustName: string[]) {
  return (e: unknown) => {
    const err = e as { code?: string; message: string; hint?: string };
    assert.equal(err.code, code, err.message);
    for (const n of mustName)
      assert.ok(`${err.message} ${err.hint}`.includes(n), `names ${n}: ${err.message} / ${err.hint}`);
    return true;
  };
}

describe("smb destination faults", { skip }, () => {
  let server: SmbServer;
  let state: string;
  before(async () => {
    server = await startSmbd();
    state = await tempDir("bsched-smb-state-");
  });
  after(async () => {
    await server?.cleanup();
  });

  test("a wrong password: AUTH_FAILED naming the destination, the account and the fix; never the password", async (t) => {
    // Session folders are counted in a TMPDIR of this test's own: other test files running
    // beside it have SMB sessions (and their folders) too.
    const own = await tempDir("bsched-smb-faults-tmp-");
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = own;
    t.after(() => {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    });
    const wrong = `wrong-${server.password}`;
    const d = new SmbDestination(specOf(server, state, "auth"));
    const bad = new SmbDestination(specOf(server, state, "auth", { password: wrong }));
    try {
      await d.ready();
      // ps sampled while a good session uploads, and while the bad one tries to log in.
      const st = await d.stage(D1);
      const body = new PassThrough();
      const put = st.put("files/big.bin", body, 4 << 20);
      body.write(Buffer.alloc(1 << 20, 1));
      const seen = [await psArgs()];
      const tried = bad.ready().catch((e: unknown) => e);
      seen.push(await psArgs());
      const err = await tried;
      body.end(Buffer.alloc(3 << 20, 2));
      await put;
      await st.abort();
      for (const s of seen) {
        assert.ok(s.includes("smbclient"), "smbclient was running when sampled");
        assert.ok(!s.includes(server.password) && !s.includes(wrong), "no password in the process list");
      }
      rejectsCode("AUTH_FAILED", "nas", `${server.domain}\\${server.user}`, "destinations.nas.login")(err);
      const text = `${(err as Error).message} ${(err as { hint?: string }).hint}`;
      assert.ok(!text.includes(wrong) && !text.includes(server.password), "no password in the message");
      for (const dir of await sessionDirs()) {
        const files = await fs.readdir(path.join(os.tmpdir(), dir)).catch(() => [] as string[]);
        assert.ok(!files.includes("auth"), `no authentication file left once logged in (${dir})`);
      }
    } finally {
      await d.close();
      await bad.close();
    }
    assert.deepEqual(await sessionDirs(), [], "nothing left in the temporary folder once closed");
  });

  test("a missing share is DESTINATION_MISSING naming it; a closed port is UNREACHABLE naming server:port", async () => {
    const share = "//127.0.0.1/nosuch";
    const missing = new SmbDestination(specOf(server, state, "x", { share }));
    await assert.rejects(
      missing.ready(),
      rejectsCode("DESTINATION_MISSING", share, "destinations.nas.share"),
    );
    await missing.close();
    const port = await freePort();
    const down = new SmbDestination(specOf(server, state, "x", { port }));
    await assert.rejects(down.names(), rejectsCode("UNREACHABLE", `127.0.0.1:${port}`));
    await down.close();
  });

  test("smbclient not on the PATH: a clear error naming it and the package, no session folder left", async () => {
    // A PATH with the shell and mkfifo but neither stdbuf nor smbclient.
    const bin = await tempDir("bsched-smb-path-");
    // Its own temporary folder: other test files' sessions come and go in the shared one.
    const tmp = await tempDir("bsched-smb-tmp-");
    const saved = process.env.PATH;
    const savedTmp = process.env.TMPDIR;
    try {
      process.env.TMPDIR = tmp;
      for (const p of ["sh", "mkfifo"]) {
        const real = (await promisify(execFile)("sh", ["-c", `command -v ${p}`])).stdout.trim();
        await fs.symlink(real, path.join(bin, p));
      }
      process.env.PATH = bin;
      const d = new SmbDestination(specOf(server, state, "x"));
      await assert.rejects(d.names(), rejectsCode("IO", "smbclient", "apt-get install smbclient"));
      await d.close();
      assert.deepEqual(await fs.readdir(tmp), [], "no session folder left");
    } finally {
      process.env.PATH = saved;
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
      await fs.rm(bin, { recursive: true, force: true });
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  test("names with spaces, quotes, semicolons, backslashes and line breaks round-trip", async () => {
    const d = new SmbDestination(specOf(server, state, "names/with space"));
    try {
      await d.ready();
      const files = [
        'files/a dir/x "quoted" y.txt',
        "files/semi;colon;ls",
        "files/back\\slash",
        "files/new\nline",
        "files/star*?<>|:",
        "files/ｆｕｌｌ＂wide‛",
      ];
      const st = await d.stage(D1);
      for (const [i, f] of files.entries())
        await st.put(f, Readable.from([Buffer.from(`content ${i}`)]), `content ${i}`.length);
      await st.publish("{}\n");
      for (const [i, f] of files.entries()) {
        assert.equal((await d.readSmall(D1, f, 100))?.toString(), `content ${i}`, f);
      }
      const stored = await fs.readdir(path.join(server.dir, "names", "with space", D1, "files"));
      assert.ok(
        stored.includes("a dir") && stored.includes("semi;colon;ls"),
        `browsable as they are: ${stored}`,
      );
      assert.ok(stored.includes("back＼slash"), `a backslash stored as its look-alike: ${stored}`);
    } finally {
      await d.close();
    }
  });

  test("names that differ only by case are refused with a clear error (a share does not tell them apart)", async () => {
    const d = new SmbDestination(specOf(server, state, "case"));
    try {
      await d.ready();
      const st = await d.stage(D1);
      await fs.mkdir(path.join(st.dir, "files"));
      await fs.writeFile(path.join(st.dir, "files", "Readme"), "1");
      await fs.writeFile(path.join(st.dir, "files", "README"), "2");
      await assert.rejects(st.publish("{}\n"), /differ only by case/);
      await st.abort();
      assert.deepEqual(await backups(d), []);
    } finally {
      await d.close();
    }
  });

  test("several files at once (transfers 3): each through a smbclient session of its own, no password in any argv; the copy verifies", async (t) => {
    const s = await makeServer({ mode: "full" });
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    for (const i of [1, 2, 3, 4, 5])
      await fs.writeFile(path.join(s.data, `f${i}.db`), Buffer.alloc(1_500_000, i));
    const full = await s.backup();
    const from = new LocalDestination(s.backups);
    const spec = specOf(server, state, "lanes");
    const d = new SmbDestination({
      ...spec,
      config: { ...spec.config, transfers: 3 } as DestinationSpec["config"],
    });
    let most = 0;
    let leaked = false;
    let sampling = true;
    const sample = (async () => {
      while (sampling) {
        const lines = (await psArgs())
          .split("\n")
          .filter(
            (l) => l.includes("smbclient") && l.includes(server.share) && l.includes(` -p ${server.port} `),
          );
        most = Math.max(most, lines.length);
        leaked ||= lines.some((l) => l.includes(server.password));
      }
    })();
    try {
      await d.ready();
      await copyBackup(from, d, full.name, { transfers: 3 });
      sampling = false;
      await sample;
      assert.ok(most >= 3, `three sessions at once at least: ${most}`);
      assert.equal(leaked, false, "the password is in no command line");
      assert.deepEqual(await backups(d), [full.name]);
      const report = await verifyBackups(d, [full.name], () => {});
      assert.deepEqual(report.problems, []);
    } finally {
      sampling = false;
      await d.close();
    }
  });

  test("the server stopped mid-put: a clear failure, nothing listed; after restart the leftovers go and a copy succeeds", async (t) => {
    const s = await makeServer({ mode: "full" });
    t.after(() => fs.rm(s.dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(s.data, "a.db"), Buffer.alloc(2_000_000, 7));
    await fs.writeFile(path.join(s.data, "b.txt"), "b\n");
    const full = await s.backup();
    const from = new LocalDestination(s.backups);
    const d = new SmbDestination(specOf(server, state, "drop"));
    try {
      await d.ready();
      const st = await d.stage(full.name);
      const body = new PassThrough();
      const put = st.put("files/a.db", body, 2_000_000);
      put.catch(() => undefined);
      body.write(Buffer.alloc(500_000, 7));
      await server.stop();
      body.end(Buffer.alloc(1_500_000, 7));
      await assert.rejects(put, (e: unknown) => {
        const err = e as { code?: string; message: string };
        assert.ok(["UNREACHABLE", "IO"].includes(err.code ?? ""), `${err.code}: ${err.message}`);
        assert.match(err.message, /nas/);
        return true;
      });
      await st.abort(); // the server is down: nothing it can do, and it never fails
      await server.restart();
      assert.deepEqual(await backups(d), [], "nothing listed");
      const left = await d.removeLeftovers("D");
      assert.equal(left.length, 1, `the staging folder left by the drop: ${left}`);
      assert.deepEqual(await d.names(), []);
      await copyBackup(from, d, full.name);
      assert.deepEqual(await backups(d), [full.name]);
      const report = await verifyBackups(d, [full.name], () => {});
      assert.deepEqual(report.problems, []);
    } finally {
      await d.close();
      await server.restart(); // up again for the next test, if an assertion stopped this one early
    }
  });
});

test("a full share: DISK_FULL naming the share and the fix; nothing lists as a backup", {
  skip,
}, async (t) => {
  let server: SmbServer;
  try {
    server = await startSmbd({ fullSize: "2m" });
  } catch (e) {
    if (process.env.BSCHED_TEST_SERVERS === "required") throw e;
    t.skip(`cannot mount a small tmpfs here: ${(e as Error).message}`);
    return;
  }
  const state = await tempDir("bsched-smb-state-");
  const d = new SmbDestination(specOf(server, state, ""));
  t.after(async () => {
    await d.close();
    await server.cleanup();
  });
  await d.ready();
  const st = await d.stage(D1);
  await fs.mkdir(path.join(st.dir, "files"));
  await fs.writeFile(path.join(st.dir, "files", "big.bin"), Buffer.alloc(4 << 20, 3));
  await assert.rejects(st.publish("{}\n"), rejectsCode("DISK_FULL", server.share, "bsched prune"));
  await st.abort();
  assert.deepEqual(await d.names(), [], "no backup and no staging left");
  const space = await d.space();
  assert.ok(space && space.free <= 2 << 20, `the share tells its free space: ${JSON.stringify(space)}`);
});
