import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { median, parseTimeV, shq, timedScript } from "../bench/measure.ts";

const GNU_TIME_REPORT = `\tCommand being timed: "zstd -3 -T0 -q -o /tmp/x.tar.zst"
\tUser time (seconds): 2.71
\tSystem time (seconds): 0.35
\tPercent of CPU this job got: 187%
\tElapsed (wall clock) time (h:mm:ss or m:ss): 0:01.63
\tAverage shared text size (kbytes): 0
\tMaximum resident set size (kbytes): 62512
\tMajor (requiring I/O) page faults: 0
\tMinor (reclaiming a frame) page faults: 15023
\tFile system outputs: 636328
\tExit status: 0
`;

describe("bench: median", () => {
  it("takes the middle value of an odd count, unsorted input", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([5]), 5);
  });
  it("averages the two middle values of an even count", () => {
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });
  it("is NaN for no values and leaves its input alone", () => {
    assert.ok(Number.isNaN(median([])));
    const xs = [3, 1, 2];
    median(xs);
    assert.deepEqual(xs, [3, 1, 2]);
  });
});

describe("bench: /usr/bin/time -v parsing", () => {
  it("reads peak RSS, wall clock and exit status", () => {
    const t = parseTimeV(GNU_TIME_REPORT);
    assert.equal(t.maxRssKb, 62512);
    assert.ok(Math.abs(t.elapsedS - 1.63) < 1e-9);
    assert.equal(t.exitStatus, 0);
  });
  it("reads h:mm:ss clocks and a non-zero exit", () => {
    const t = parseTimeV(
      "Command exited with non-zero status 3\n\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03\n" +
        "\tMaximum resident set size (kbytes): 10\n\tExit status: 3\n",
    );
    assert.equal(t.elapsedS, 3723);
    assert.equal(t.exitStatus, 3);
  });
  it("refuses a report without the RSS line", () => {
    assert.throws(() => parseTimeV("garbage"), /Maximum resident set size/);
  });
});

describe("bench: timed scripts", () => {
  it("wraps every part of a pipeline in its own time report, with pipefail", () => {
    const { script, reports } = timedScript(
      {
        kind: "pipe",
        parts: [
          ["tar", "-cf", "-", "."],
          ["zstd", "-o", "/tmp/a b"],
        ],
      },
      "/tmp/r",
    );
    assert.deepEqual(reports, ["/tmp/r.0", "/tmp/r.1"]);
    assert.equal(
      script,
      "set -o pipefail; /usr/bin/time -v -o /tmp/r.0 tar -cf - . | /usr/bin/time -v -o /tmp/r.1 zstd -o '/tmp/a b'",
    );
  });
  it("chains a sequence with && so that a failing step fails the whole", () => {
    const { script } = timedScript({ kind: "seq", parts: [["true"], ["false"]] }, "/tmp/r");
    assert.match(script, /true && \/usr\/bin\/time/);
  });
  it("quotes words for bash", () => {
    assert.equal(shq("plain/path-1.txt"), "plain/path-1.txt");
    assert.equal(shq("it's"), `'it'\\''s'`);
  });
});
