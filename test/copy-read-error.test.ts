import assert from "node:assert/strict";
import type { FileHandle } from "node:fs/promises";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { copyAndHash } from "../src/platform/copy.ts";

// A read that fails while the previous chunk is still being written (a disk or share failing
// mid-file) used to reject the read-ahead with nothing awaiting it: an unhandled rejection that
// killed the process (restore left its staging folder, verify reported nothing). It must be the
// copy's own failure instead, thrown to its caller.
test("copyAndHash: a read failing while the previous chunk is written is the copy's error, not an unhandled rejection", async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  t.after(() => {
    process.off("unhandledRejection", onUnhandled);
  });
  let reads = 0;
  const src = {
    async read(buffer: Buffer, offset: number, length: number) {
      reads++;
      if (reads === 2) throw Object.assign(new Error("EIO: i/o error, read"), { code: "EIO", errno: -5 });
      buffer.fill(7, offset, offset + length);
      return { bytesRead: length, buffer };
    },
  } as unknown as FileHandle;
  const sink = async () => {
    // Slow writes: the read ahead fails before the copy comes back to await it.
    await sleep(20);
  };
  await assert.rejects(copyAndHash(src, sink), /EIO/);
  await sleep(20);
  assert.deepEqual(unhandled, [], "no rejection left unhandled");
});
