import { Transform } from "node:stream";
import { BschedError } from "../core/errors.ts";

/**
 * The body of a Staging.put, passed through unchanged but failing when it ends before or runs
 * past `size` bytes: a source that shrank or a stream cut short must fail the copy, never publish
 * a short file under a manifest that promises more.
 */
export function exactly(size: number, where: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > size) {
        done(
          new BschedError("IO", `${where}: more than the ${size} bytes expected arrived`, {
            hint: "the file changed while it was copied: run the copy again",
          }),
        );
        return;
      }
      done(null, chunk);
    },
    flush(done) {
      if (seen === size) done();
      else
        done(
          new BschedError("IO", `${where}: the stream ended after ${seen} of ${size} bytes`, {
            hint: "the transfer was cut short: run the copy again",
          }),
        );
    },
  });
}
