import type { DaemonService } from "../daemon/service.ts";
import type { Status } from "../ops/status.ts";

/** How old a status may be served while a fresh one is made in the background. */
export const STATUS_FRESH_MS = 2_000;

/**
 * `GET /api/status` without re-reading every backup folder at every request: a status costs some
 * fifty small file reads per set, which queue behind a running backup's own I/O (libuv's four
 * threads), and a window polls it. The status is made again (and waited for) after anything the
 * daemon knows changes it: a run starting or ending, a config reload. Otherwise one older than
 * STATUS_FRESH_MS is still answered while a new one is made (a backup or prune by the CLI in another
 * process shows within that time). Never more than one status is made at a time.
 */
export class StatusCache {
  readonly #make: () => Promise<Status>;
  readonly #now: () => number;
  #value: { status: Status; at: number } | undefined;
  #making: { p: Promise<Status>; gen: number } | undefined;
  /** Bumped by every change: a status made across a change is not kept as fresh. */
  #generation = 0;

  constructor(
    service: DaemonService,
    make: () => Promise<Status>,
    now: () => number = () => performance.now(),
  ) {
    this.#make = make;
    this.#now = now;
    const unwatch = service.runs.watch((e) => {
      if (e.type !== "event") this.invalidate();
    });
    const unconfig = service.onConfig(() => this.invalidate());
    this.close = () => {
      unwatch();
      unconfig();
    };
  }

  /** Stop listening to the daemon (the API is closing; the daemon may live on). */
  readonly close: () => void;

  /** Something the status shows changed: the next request waits for a new one. */
  invalidate(): void {
    this.#generation++;
    this.#value = undefined;
  }

  async get(): Promise<Status> {
    const v = this.#value;
    if (v === undefined) return this.#refresh();
    if (this.#now() - v.at > STATUS_FRESH_MS) void this.#refresh().catch(() => undefined);
    return v.status;
  }

  #refresh(): Promise<Status> {
    const making = this.#making;
    if (making) {
      // One being made since the last change: share it; else a new one once it is done.
      if (making.gen === this.#generation) return making.p;
      return making.p.then(
        () => this.#refresh(),
        () => this.#refresh(),
      );
    }
    const gen = this.#generation;
    const at = this.#now();
    const p = this.#make()
      .then((status) => {
        if (gen === this.#generation) this.#value = { status, at };
        return status;
      })
      .finally(() => {
        this.#making = undefined;
      });
    this.#making = { p, gen };
    // A change while it was made: whoever waits for a fresh one gets the next.
    return p.then((s) => (gen === this.#generation ? s : this.#refresh()));
  }
}
