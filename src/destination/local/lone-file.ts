import fs from "node:fs/promises";
import path from "node:path";
import { BschedError } from "../../core/errors.ts";
import type { Clock } from "../../platform/clock.ts";
import { openRegular, readRegularSmallSync } from "../../platform/fsutil.ts";
import type { Destination, Lease, ReadHandle, Staging } from "../destination.ts";

/**
 * A compressed backup's self-extracting file found alone, without its folder (copied to a USB
 * disk, or given by path to `restore --from`/`verify --from`): a read-only Destination holding
 * that one file. Whatever backup name it is asked for, its `<name>.sh` is the file (the name
 * inside the file is checked by whoever reads it); it has no `manifest.json` beside it (the
 * manifest is the payload's first member). `file` is a real path: nothing is followed in it.
 */
export class LoneFileDestination implements Destination {
  readonly name = "file";
  readonly where: string;
  readonly file: string;

  constructor(file: string) {
    this.file = file;
    this.where = path.dirname(file);
  }

  /** The file itself is the place of the backup and of everything in it. */
  locationOf(_backup: string, _file?: string): string {
    return this.file;
  }

  #isPayload(backup: string, file: string): boolean {
    return file === `${backup}.sh`;
  }

  #missing(backup: string, file: string): Error {
    return Object.assign(
      new Error(`ENOENT: ${file} is not beside the lone file ${this.file} (of ${backup})`),
      {
        code: "ENOENT",
      },
    );
  }

  /** Open the file whatever the backup's name (to read its header, which says the name). */
  async openFile(): Promise<ReadHandle> {
    const fh = await openRegular(this.file);
    const { size } = await fh.stat();
    return {
      size,
      read: async (buffer, offset, length, position) =>
        (await fh.read(buffer, offset, length, position)).bytesRead,
      stream: (opts = {}) =>
        fh.createReadStream({
          start: opts.start ?? 0,
          ...(opts.end === undefined ? {} : { end: opts.end }),
          highWaterMark: opts.highWaterMark ?? 1 << 20,
          autoClose: false,
        }),
      close: () => fh.close(),
    };
  }

  async ready(): Promise<void> {}

  async names(): Promise<string[]> {
    return [];
  }

  async topFiles(backup: string): Promise<{ name: string; size: number }[]> {
    const st = await fs.stat(this.file).catch(() => undefined);
    return st ? [{ name: `${backup}.sh`, size: st.size }] : [];
  }

  async open(backup: string, file: string): Promise<ReadHandle> {
    if (!this.#isPayload(backup, file)) throw this.#missing(backup, file);
    return this.openFile();
  }

  async readSmall(backup: string, file: string, max: number): Promise<Buffer | undefined> {
    if (!this.#isPayload(backup, file)) throw this.#missing(backup, file);
    return readRegularSmallSync(this.file, max);
  }

  #readOnly(doing: string): never {
    throw new BschedError("USAGE", `${this.file} is a backup file found alone: it cannot be ${doing}`, {
      hint: "back up into a set's backup folder (the file is only read: restore --from, verify --from)",
    });
  }

  async stage(_backup: string): Promise<Staging> {
    this.#readOnly("written to");
  }

  async remove(_backup: string): Promise<void> {
    this.#readOnly("deleted by bsched");
  }

  async removeLeftovers(_letter: string): Promise<string[]> {
    return [];
  }

  async lock(_setId: string, _purpose: string, _clock: Clock): Promise<Lease> {
    this.#readOnly("locked");
  }

  async space(): Promise<undefined> {
    return undefined;
  }
}
