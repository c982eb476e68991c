/**
 * The part buffers every S3 upload of the process fills and sends: a fixed number, allocated at
 * first use and refilled, never garbage. One pool for the process, whatever the number of
 * destinations or files in flight, so what uploads hold is bounded by COUNT × SIZE (25 MiB).
 * A buffer is taken to fill a part (or a whole small object), handed to its request, and given
 * back when the request has ended; whoever needs one meanwhile waits.
 */
export class PartPool {
  readonly size: number;
  readonly #count: number;
  #made = 0;
  readonly #free: Buffer[] = [];
  readonly #waiting: ((b: Buffer) => void)[] = [];

  constructor(size: number, count: number) {
    this.size = size;
    this.#count = count;
  }

  /** A buffer of `size` bytes (old contents), when one is free. */
  take(): Promise<Buffer> {
    const b = this.#free.pop();
    if (b) return Promise.resolve(b);
    if (this.#made < this.#count) {
      this.#made++;
      return Promise.resolve(Buffer.allocUnsafeSlow(this.size));
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /**
   * Free every buffer not taken, at once: detached (ArrayBuffer.transfer), their memory goes
   * back to the system now, not at V8's next full collection. The pool makes new ones if asked.
   */
  release(): void {
    const free = this.#free.splice(0);
    for (const b of free) (b.buffer as ArrayBuffer).transfer(0);
    this.#made -= free.length;
  }

  /** Give back a buffer taken (once its request has ended: nothing reads it any more). */
  give(b: Buffer): void {
    const next = this.#waiting.shift();
    if (next) next(b);
    else this.#free.push(b);
  }
}
