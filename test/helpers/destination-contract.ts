import assert from "node:assert/strict";
import { once } from "node:events";
import fs from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { errnoCode } from "../../src/core/errors.ts";
import type { Destination, ReadHandle } from "../../src/destination/destination.ts";
import { systemClock } from "../../src/platform/clock.ts";
import { isBackupName } from "../../src/snapshot/naming.ts";

/** A fresh, empty destination for one case, and how to remove everything it made. */
export interface DestinationUnderTest {
  dest: Destination;
  cleanup(): Promise<void>;
  /**
   * Leave `backup` as a remove killed half-way would (implementation-specific: on a folder, renamed
   * aside and partly deleted). Without it the half-removed case of removeLeftovers is skipped.
   */
  crashDuringRemove?(backup: string): Promise<void>;
}

export type DestinationFactory = () => Promise<DestinationUnderTest>;

const D1 = "D_2026_12_06_04_00_00";
const D2 = "D_2026_12_07_04_00_00";
const D3 = "D_2026_12_08_04_00_00";
const A1 = "A_2026_12_06_04_00_00";

/** A manifest-like text: the contract stores it byte for byte, whatever it holds. */
const manifestOf = (name: string) => `{"header":{"name":"${name}"},\n"entries":[\n],\n"deletions":[]}\n`;

/** 200 KiB whose every byte depends on its offset: a wrong range or a short read shows. */
const BIG = Buffer.from(Array.from({ length: 200 * 1024 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

/** Stage `name` holding files/a/big.bin (BIG) and files/small.txt, and publish it. */
async function publish(dest: Destination, name: string): Promise<void> {
  const st = await dest.stage(name);
  await fs.mkdir(path.join(st.dir, "files", "a"), { recursive: true });
  await fs.writeFile(path.join(st.dir, "files", "a", "big.bin"), BIG);
  await fs.writeFile(path.join(st.dir, "files", "small.txt"), "small file\n");
  await st.publish(manifestOf(name));
}

async function backups(dest: Destination): Promise<string[]> {
  return (await dest.names()).filter((n) => isBackupName(n)).sort();
}

/** The whole content of a handle read with `read` in pieces of `piece` bytes (looping on short reads). */
async function readAll(h: ReadHandle, piece: number): Promise<Buffer> {
  const out = Buffer.alloc(h.size);
  let at = 0;
  for (;;) {
    const n = await h.read(out, at, Math.min(piece, h.size - at), at);
    assert.ok(n <= piece, "read never returns more than asked");
    if (n === 0) break;
    at += n;
  }
  const extra = await h.read(Buffer.alloc(16), 0, 16, h.size);
  assert.equal(extra, 0, "a read at the end returns 0");
  return out.subarray(0, at);
}

async function streamed(h: ReadHandle, opts?: { start?: number; end?: number }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of h.stream(opts)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function rejectsWith(p: Promise<unknown>, code: string, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal(errnoCode(e), code, `${what}: ${(e as Error).message}`);
    return true;
  });
}

/**
 * The Destination contract (src/destination/destination.ts): every implementation — local now,
 * SFTP, S3 and SMB next — must pass these cases. `label` names the implementation in the test
 * names; `make` gives a fresh destination per case (the suite calls `ready()` itself).
 */
export function destinationContract(label: string, make: DestinationFactory): void {
  const withDest = (title: string, body: (u: DestinationUnderTest) => Promise<void>) =>
    // A timeout: an implementation that hangs fails its case instead of blocking the suite.
    test(`destination contract (${label}): ${title}`, { timeout: 120_000 }, async (t) => {
      const u = await make();
      t.after(async () => {
        await u.dest.close?.();
        await u.cleanup();
      });
      await u.dest.ready();
      await body(u);
    });

  withDest("a name and a place; a new destination holds no backup", async ({ dest }) => {
    assert.ok(dest.name.length > 0);
    assert.ok(dest.where.length > 0);
    assert.ok(dest.locationOf(D1).includes(D1), "a backup's location names it");
    assert.deepEqual(await backups(dest), []);
    await dest.ready(); // ready twice is fine
  });

  withDest(
    "put streams files into a staging area; a body shorter or longer than said fails",
    async ({ dest }) => {
      const st = await dest.stage(D1);
      await st.put("files/a/big.bin", Readable.from([BIG.subarray(0, 1000), BIG.subarray(1000)]), BIG.length);
      await st.put("files/small.txt", Readable.from([Buffer.from("small file\n")]), 11);
      // A failed put fails the copy: its caller aborts that staging area (D2 here), leaving nothing.
      const bad = await dest.stage(D2);
      await assert.rejects(
        bad.put("files/short.bin", Readable.from([Buffer.from("abc")]), 4),
        /ended after 3 of 4/,
      );
      await assert.rejects(
        bad.put("files/long.bin", Readable.from([Buffer.from("abcde")]), 4),
        /more than the 4/,
      );
      await bad.abort();
      assert.deepEqual(await backups(dest), [], "nothing visible before publish");
      await st.publish(manifestOf(D1));
      assert.deepEqual(await backups(dest), [D1]);
      const h = await dest.open(D1, "files/a/big.bin");
      try {
        assert.ok((await streamed(h)).equals(BIG));
      } finally {
        await h.close();
      }
      assert.equal((await dest.readSmall(D1, "files/small.txt", 100))?.toString(), "small file\n");
      assert.equal((await dest.readSmall(D1, "manifest.json", 1000))?.toString(), manifestOf(D1));
    },
  );

  withDest("a staged backup is visible only once published, with its manifest", async ({ dest }) => {
    const st = await dest.stage(D1);
    await fs.mkdir(path.join(st.dir, "files"), { recursive: true });
    await fs.writeFile(path.join(st.dir, "files", "x.txt"), "x");
    assert.deepEqual(await backups(dest), [], "a staging area is never listed as a backup");
    await rejectsWith(dest.open(D1, "manifest.json"), "ENOENT", "not published yet");
    await st.publish(manifestOf(D1));
    assert.deepEqual(await backups(dest), [D1]);
    const h = await dest.open(D1, "manifest.json");
    try {
      assert.equal((await readAll(h, 1 << 16)).toString(), manifestOf(D1), "the manifest as given");
    } finally {
      await h.close();
    }
    const x = await dest.readSmall(D1, "files/x.txt", 100);
    assert.equal(x?.toString(), "x");
  });

  withDest("abort leaves nothing, and the name can be staged again", async ({ dest }) => {
    const before = (await dest.names()).sort();
    const st = await dest.stage(D1);
    await fs.mkdir(path.join(st.dir, "files"), { recursive: true });
    await fs.writeFile(path.join(st.dir, "files", "x.txt"), "x");
    await st.abort();
    await st.abort(); // never fails, also twice
    assert.deepEqual((await dest.names()).sort(), before, "nothing left by an aborted run");
    await publish(dest, D1);
    assert.deepEqual(await backups(dest), [D1]);
  });

  withDest(
    "publishing twice, or over an existing backup, is refused and changes nothing",
    async ({ dest }) => {
      const first = await dest.stage(D1);
      const second = await dest.stage(D1);
      await fs.writeFile(path.join(first.dir, "one"), "first");
      await fs.writeFile(path.join(second.dir, "two"), "second");
      await first.publish(manifestOf(D1));
      await assert.rejects(first.publish(manifestOf(D1)), "the same staging published twice");
      await assert.rejects(second.publish('{"header":{"name":"other"}}\n'), "a second backup of that name");
      await second.abort();
      assert.deepEqual(await backups(dest), [D1]);
      assert.equal((await dest.readSmall(D1, "manifest.json", 1000))?.toString(), manifestOf(D1));
      assert.equal((await dest.readSmall(D1, "one", 100))?.toString(), "first");
      await rejectsWith(dest.readSmall(D1, "two", 100), "ENOENT", "the refused backup's file");
      const names = (await dest.names()).filter((n) => n.includes(D1));
      assert.deepEqual(names, [D1], "no staging left beside it after abort");
    },
  );

  withDest("open, read and stream a stored file, whole and by ranges", async ({ dest }) => {
    await publish(dest, D1);
    const h = await dest.open(D1, "files/a/big.bin");
    try {
      assert.equal(h.size, BIG.length);
      assert.ok((await readAll(h, 1 << 20)).equals(BIG), "read whole");
      assert.ok((await readAll(h, 4093)).equals(BIG), "read in odd pieces");
      const mid = Buffer.alloc(100);
      let got = 0;
      while (got < 100) {
        const n = await h.read(mid, got, 100 - got, 70_000 + got);
        assert.ok(n > 0);
        got += n;
      }
      assert.ok(mid.equals(BIG.subarray(70_000, 70_100)), "read at a position");
      assert.ok((await streamed(h)).equals(BIG), "stream whole");
      assert.ok((await streamed(h, { start: 1000 })).equals(BIG.subarray(1000)), "stream from start");
      assert.ok((await streamed(h, { end: 99 })).equals(BIG.subarray(0, 100)), "end is inclusive");
      assert.ok(
        (await streamed(h, { start: 65_530, end: 131_080 })).equals(BIG.subarray(65_530, 131_081)),
        "a range across chunks",
      );
      // The handle outlives its streams: reading it again still works.
      assert.ok((await streamed(h, { start: BIG.length - 1 })).equals(BIG.subarray(-1)));
    } finally {
      await h.close();
    }
  });

  withDest("a stream stopped early, or failing, leaves its handle open for more reads", async ({ dest }) => {
    await publish(dest, D1);
    const h = await dest.open(D1, "files/a/big.bin");
    try {
      for await (const c of h.stream({ highWaterMark: 1024 })) {
        assert.ok((c as Buffer).equals(BIG.subarray(0, (c as Buffer).length)));
        break; // the reader stops early: the stream is destroyed
      }
      const s = h.stream({ start: 10 });
      s.on("error", () => undefined);
      s.destroy(new Error("the consumer failed"));
      if (!s.closed) await once(s, "close");
      assert.ok(
        (await streamed(h, { start: 100, end: 199 })).equals(BIG.subarray(100, 200)),
        "streams again",
      );
      assert.ok((await readAll(h, 1 << 16)).equals(BIG), "reads again");
    } finally {
      await h.close();
    }
  });

  withDest("a missing backup or file is an ENOENT-coded error", async ({ dest }) => {
    await publish(dest, D1);
    await rejectsWith(dest.open(D2, "manifest.json"), "ENOENT", "open in a missing backup");
    await rejectsWith(dest.open(D1, "files/none.bin"), "ENOENT", "open a missing file");
    await rejectsWith(dest.open(D1, "files/none/x.bin"), "ENOENT", "open under a missing folder");
    await rejectsWith(dest.readSmall(D2, "manifest.json", 100), "ENOENT", "readSmall in a missing backup");
    await rejectsWith(dest.readSmall(D1, "files/none.bin", 100), "ENOENT", "readSmall a missing file");
  });

  withDest("readSmall: the whole file up to max bytes, undefined above", async ({ dest }) => {
    await publish(dest, D1);
    const small = "small file\n";
    assert.equal((await dest.readSmall(D1, "files/small.txt", 1000))?.toString(), small);
    assert.equal(
      (await dest.readSmall(D1, "files/small.txt", small.length))?.toString(),
      small,
      "max itself",
    );
    assert.equal(await dest.readSmall(D1, "files/small.txt", small.length - 1), undefined);
    assert.equal(await dest.readSmall(D1, "files/a/big.bin", 1024), undefined, "open it instead");
  });

  withDest("topFiles: the regular files at a backup's top with their sizes", async ({ dest }) => {
    const st = await dest.stage(D1);
    await fs.mkdir(path.join(st.dir, "files"));
    await fs.writeFile(path.join(st.dir, "files", "inner"), "not at the top");
    await fs.writeFile(path.join(st.dir, `${D1}.sh`), "#!/bin/sh\nexit 0\n");
    await st.publish(manifestOf(D1));
    const top = (await dest.topFiles(D1)).sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(top, [
      { name: `${D1}.sh`, size: "#!/bin/sh\nexit 0\n".length },
      { name: "manifest.json", size: Buffer.byteLength(manifestOf(D1)) },
    ]);
  });

  withDest("remove: gone whole, never listed half-removed, the others untouched", async ({ dest }) => {
    await publish(dest, D1);
    await publish(dest, D2);
    // Listings taken while the remove runs: a backup listed is a whole one (its manifest readable,
    // or gone because the remove went on between the listing and the read: then no longer listed).
    let removing = true;
    const watcher = (async () => {
      while (removing) {
        if ((await backups(dest)).includes(D1)) {
          const m = await dest.readSmall(D1, "manifest.json", 1000).catch((e: unknown) => {
            if (errnoCode(e) !== "ENOENT") throw e;
            return undefined;
          });
          if (m === undefined) assert.ok(!(await backups(dest)).includes(D1), "listed without its manifest");
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    await dest.remove(D1);
    removing = false;
    await watcher;
    assert.deepEqual(await backups(dest), [D2]);
    assert.deepEqual(
      (await dest.names()).filter((n) => n.includes(D1)),
      [],
      "nothing of it left, not even hidden",
    );
    await rejectsWith(dest.open(D1, "manifest.json"), "ENOENT", "a removed backup");
    assert.ok((await dest.readSmall(D2, "files/small.txt", 100))?.equals(Buffer.from("small file\n")));
    await rejectsWith(dest.remove(D3), "ENOENT", "removing a backup that is not there");
  });

  withDest("removeLeftovers: staged and half-removed leftovers of that letter only", async (u) => {
    const { dest } = u;
    await publish(dest, D1);
    await publish(dest, D2);
    await publish(dest, A1);
    // Runs that crashed: staging areas never published nor aborted.
    const crashedD = await dest.stage(D3);
    await fs.writeFile(path.join(crashedD.dir, "partial"), "half a backup");
    const crashedA = await dest.stage("A_2026_12_09_04_00_00");
    await fs.writeFile(path.join(crashedA.dir, "partial"), "another set's run");
    if (u.crashDuringRemove) await u.crashDuringRemove(D2);
    const before = await dest.names();
    const removed = await dest.removeLeftovers("D");
    const after = await dest.names();
    assert.deepEqual(
      removed.sort(),
      before.filter((n) => !after.includes(n)).sort(),
      "it returns exactly what it removed",
    );
    assert.equal(removed.length, u.crashDuringRemove ? 2 : 1, `removed: ${removed.join(", ")}`);
    assert.ok(
      removed.every((n) => !isBackupName(n)),
      "a complete backup is never a leftover",
    );
    assert.deepEqual(
      await backups(dest),
      u.crashDuringRemove ? [A1, D1] : [A1, D1, D2],
      "complete backups stay (a half-removed one was never listed)",
    );
    assert.equal((await dest.readSmall(D1, "manifest.json", 1000))?.toString(), manifestOf(D1));
    assert.equal((await dest.readSmall(A1, "manifest.json", 1000))?.toString(), manifestOf(A1));
    // Another letter's crashed run is that set's to clean: still there, still publishable.
    await crashedA.publish(manifestOf("A_2026_12_09_04_00_00"));
    assert.ok((await backups(dest)).includes("A_2026_12_09_04_00_00"));
    assert.deepEqual(await dest.removeLeftovers("D"), [], "nothing more to remove");
  });

  withDest("lock: one holder per set; LOCKED for a second; free again once released", async ({ dest }) => {
    const lease = await dest.lock("data", "backup of set data", systemClock);
    await assert.rejects(dest.lock("data", "prune of set data", systemClock), (e: unknown) => {
      assert.equal((e as { code?: string }).code, "LOCKED");
      assert.match((e as Error).message, /backup of set data/, "names the holder");
      assert.ok((e as { hint?: string }).hint, "with a hint");
      return true;
    });
    const other = await dest.lock("archive", "backup of set archive", systemClock);
    await other.release();
    await lease.release();
    const again = await dest.lock("data", "prune of set data", systemClock);
    await again.release();
    assert.deepEqual(await backups(dest), [], "a lock is never a backup");
  });

  withDest("space: free bytes and allocation unit, or undefined where unknown", async ({ dest }) => {
    const s = await dest.space();
    if (s === undefined) return;
    assert.ok(Number.isSafeInteger(s.free) && s.free >= 0, `free ${s.free}`);
    assert.ok(Number.isSafeInteger(s.blockSize) && s.blockSize > 0, `blockSize ${s.blockSize}`);
  });
}
