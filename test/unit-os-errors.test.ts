import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { BschedError } from "../src/core/errors.ts";
import { fromOsError, realExisting } from "../src/platform/os-errors.ts";

/** A real system error from the kernel, as Node throws it. */
async function systemError(fn: () => Promise<unknown>): Promise<NodeJS.ErrnoException> {
  try {
    await fn();
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
  throw new Error("expected a failure");
}

test("every system error becomes a bsched code with its path and a hint; other errors pass through", async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "bsched-oserr-"));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(dir, "file"), "x");

  const notDir = fromOsError(await systemError(() => fs.mkdir(path.join(dir, "file/sub"))));
  assert.ok(notDir instanceof BschedError);
  assert.equal(notDir.code, "IO");
  assert.match(notDir.message, /file\/sub: a part of this path is a file, not a folder .*\[ENOTDIR/);
  assert.ok(notDir.hint);

  // A write() on a full disk carries no path: the caller's context gives it, with the sizes.
  const full = Object.assign(new Error("ENOSPC: no space left on device, write"), {
    code: "ENOSPC",
    errno: -28,
    syscall: "write",
  });
  const mapped = fromOsError(full, { path: dir, neededBytes: 5_000_000, doing: "backup of set data" });
  assert.ok(mapped instanceof BschedError);
  assert.equal(mapped.code, "DISK_FULL");
  assert.match(
    mapped.message,
    new RegExp(`no space left on .*${path.basename(dir)}.*needed ~5\\.0 MB, free \\d`),
  );
  assert.match(mapped.message, /\(backup of set data\) \[ENOSPC: no space left on device, write\]$/);
  assert.ok(mapped.hint);

  const perm = fromOsError(
    Object.assign(new Error("EPERM: operation not permitted, chown '/x/y'"), {
      code: "EPERM",
      errno: -1,
      syscall: "chown",
      path: "/x/y",
    }),
  );
  assert.ok(perm instanceof BschedError);
  assert.equal(perm.code, "PERMISSION_DENIED");
  assert.match(perm.message, /permission denied: cannot chown \/x\/y/);
  assert.match(perm.hint ?? "", /bsched runs as .*access to \/x/);

  const eio = fromOsError(
    Object.assign(new Error("EIO: i/o error, read"), { code: "EIO", errno: -5, syscall: "read" }),
    {
      path: "/mnt/nas/Backup",
    },
  );
  assert.ok(eio instanceof BschedError && eio.code === "IO" && /\/mnt\/nas\/Backup/.test(eio.message));

  const plain = new Error("not a system error");
  assert.equal(fromOsError(plain), plain);
  const own = new BschedError("LOCKED", "held");
  assert.equal(fromOsError(own), own);
});

test("realExisting resolves a symlink above a path whose end does not exist yet", async (t) => {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "bsched-oserr-")));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, "Data"));
  await fs.symlink("Data", path.join(dir, "link"));
  assert.equal(realExisting(path.join(dir, "link/a/b")), path.join(dir, "Data/a/b"));
  assert.equal(realExisting(path.join(dir, "Data")), path.join(dir, "Data"));
});
