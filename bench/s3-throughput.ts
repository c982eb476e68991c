/**
 * The `s3` destination's raw throughput against a local radosgw (test/helpers/servers/ceph.ts):
 * one `put` and one whole `stream` of a 200 MB file, in MB/s, then a 1 GiB put for the peak RSS
 * (multipart with bounded memory). Not part of the tests:
 * `node --semi-space-growth-factor=1 bench/s3-throughput.ts [MB]` (the flag bin/bsched.js sets).
 */
import { Readable } from "node:stream";
import { openDestination } from "../src/destination/open.ts";
import { tempDir } from "../test/helpers/cli.ts";
import { startCeph } from "../test/helpers/servers/ceph.ts";

function zeros(size: number, piece = 1 << 20): Readable {
  let at = 0;
  const chunk = Buffer.alloc(piece, 0x5a);
  return new Readable({
    read() {
      if (at >= size) return void this.push(null);
      const len = Math.min(piece, size - at);
      at += len;
      this.push(len === piece ? chunk : chunk.subarray(0, len));
    },
  });
}

const mb = Number(process.argv[2] ?? 200);
const ceph = await startCeph();
try {
  const bucket = await ceph.newBucket();
  const state = await tempDir("bsched-s3-bench-");
  const dest = openDestination({
    name: "offsite",
    state,
    config: {
      type: "s3",
      endpoint: ceph.endpoint,
      bucket,
      prefix: "bench",
      region: ceph.region,
      accessKeyId: ceph.accessKeyId,
      secretAccessKey: ceph.secretAccessKey,
      pathStyle: true,
      verify: "read",
    },
  });
  await dest.ready();
  const rssReady = process.resourceUsage().maxRSS;
  const size = mb * 1e6;
  const name = "D_2026_12_06_04_00_00";
  const st = await dest.stage(name);
  let t = performance.now();
  await st.put("files/big.bin", zeros(size), size);
  const putS = (performance.now() - t) / 1000;
  await st.publish("{}\n");
  const rssPut = process.resourceUsage().maxRSS;
  const h = await dest.open(name, "files/big.bin");
  t = performance.now();
  let got = 0;
  for await (const c of h.stream()) got += (c as Buffer).length;
  const getS = (performance.now() - t) / 1000;
  await h.close();
  if (got !== size) throw new Error(`read ${got} of ${size}`);
  const rssBefore = process.resourceUsage().maxRSS;
  const gib = 1024 ** 3;
  const big = await dest.stage("D_2026_12_07_04_00_00");
  await big.put("files/huge.bin", zeros(gib), gib);
  await big.abort();
  const peak = (kb: number) => `${Math.round(kb / 1024)} MB`;
  console.log(
    `s3 on radosgw: put ${mb} MB ${(mb / putS).toFixed(1)} MB/s, get ${(mb / getS).toFixed(1)} MB/s; ` +
      `peak RSS ${peak(rssReady)} ready, ${peak(rssPut)} after the put, ${peak(rssBefore)} after the get, ` +
      `${peak(process.resourceUsage().maxRSS)} after a 1 GiB put`,
  );
  await dest.close?.();
} finally {
  await ceph.stop();
}
