import fsp from "node:fs/promises";
import { PassThrough } from "node:stream";
import Fastify from "fastify";
import { BschedError, errnoCode } from "../core/errors.ts";
import { BACKUP_MODES, BACKUP_TYPES, type BackupMode, type BackupType } from "../core/types.ts";
import type { OpEvent } from "../ops/context.ts";
import type { RunHandle } from "../ops/runs.ts";
import type { DaemonService } from "./service.ts";

/*
 * The daemon's local control endpoint: HTTP over a unix socket in the state folder, mode 0600, so
 * only the daemon's user (and root) can reach it. Just what a manual `bsched backup` needs to go
 * through the daemon's queue; the next issue builds the real API (OpenAPI, auth, TCP) beside it.
 *
 *   GET  /runs              the runs in progress (RunInfo[])
 *   POST /runs              {set, mode?, type?, prune?}: queue a backup of the set now; the answer
 *                           is NDJSON: {"run": RunInfo}, then {"event": OpEvent}…, then
 *                           {"result": BackupNowResult} or {"error": {code, message, hint, exitCode}}
 *   GET  /runs/:id/events   the same stream for a run in progress, its events from now on (404 when none)
 *   DELETE /runs/:id        cancel a queued or running run (its stream then ends with its error)
 *
 * A client that goes away does not stop the run (it is the daemon's now; the catalog records it).
 */

/** One line of a run's NDJSON stream. */
export type ControlLine =
  | { run: RunHandle<unknown>["info"] }
  | { event: OpEvent }
  | { result: unknown }
  | { error: WireError };

export interface WireError {
  code: string;
  message: string;
  hint: string | null;
  exitCode: number;
}

export interface ControlServer {
  path: string;
  close(): Promise<void>;
}

/** At most this many progress events a second per stream: a progress bar redraws 10 times a second. */
const PROGRESS_EVERY_MS = 100;

export function toWireError(e: unknown): WireError {
  if (e instanceof BschedError)
    return { code: e.code, message: e.message, hint: e.hint ?? null, exitCode: e.exitCode };
  return { code: "INTERNAL", message: (e as Error)?.message ?? String(e), hint: null, exitCode: 1 };
}

/** Listen on `socket` (a dead daemon's socket file there is replaced); mode 0600. */
export async function listenControl(service: DaemonService, socket: string): Promise<ControlServer> {
  // We hold the state folder's lock: a socket file here is a dead daemon's. Anything else is not ours.
  const st = await fsp.lstat(socket).catch((e) => {
    if (errnoCode(e) === "ENOENT") return undefined;
    throw e;
  });
  if (st && !st.isSocket())
    throw new BschedError("IO", `${socket} exists and is not a socket`, {
      hint: "move it away: the daemon's control socket goes there",
    });
  if (st) await fsp.rm(socket, { force: true });

  // forceCloseConnections: a stream of a run cut short by stop() must not hold close() open.
  const app = Fastify({ logger: false, forceCloseConnections: true });

  app.get("/runs", async () => service.runs.list());

  app.post(
    "/runs",
    {
      schema: {
        body: {
          type: "object",
          required: ["set"],
          additionalProperties: false,
          properties: {
            set: { type: "string", minLength: 1 },
            mode: { type: "string", enum: [...BACKUP_MODES] },
            type: { type: "string", enum: [...BACKUP_TYPES] },
            prune: { type: "boolean" },
          },
        },
      },
    },
    async (req, reply) => {
      const body = req.body as { set: string; mode?: BackupMode; type?: BackupType; prune?: boolean };
      let handle: RunHandle<unknown>;
      try {
        handle = service.runNow(body.set, { mode: body.mode, type: body.type, prune: body.prune });
      } catch (e) {
        const w = toWireError(e);
        return reply
          .code(w.code === "SET_UNKNOWN" ? 404 : w.code === "LOCKED" ? 503 : 500)
          .send({ error: w });
      }
      return reply.type("application/x-ndjson").send(stream(handle));
    },
  );

  app.get("/runs/:id/events", async (req, reply) => {
    const { id } = req.params as { id: string };
    const handle = service.runs.get(id);
    if (!handle)
      return reply.code(404).send({
        error: toWireError(
          new BschedError("USAGE", `no run ${id} in progress`, {
            hint: "GET /runs lists the runs in progress",
          }),
        ),
      });
    return reply.type("application/x-ndjson").send(stream(handle));
  });

  app.delete("/runs/:id", async (req, reply) => {
    const { id } = req.params as { id: string };
    if (service.runs.cancel(id, "cancelled by a client of the daemon")) return reply.code(202).send({ id });
    return reply.code(404).send({
      error: toWireError(
        new BschedError("USAGE", `no run ${id} in progress`, { hint: "it has ended already" }),
      ),
    });
  });

  app.setErrorHandler((err: Error & { validation?: unknown }, _req, reply) => {
    const bad = err.validation !== undefined;
    const e = bad
      ? new BschedError("USAGE", err.message, { hint: "POST /runs takes {set, mode?, type?, prune?}" })
      : err;
    void reply.code(bad ? 400 : 500).send({ error: toWireError(e) });
  });

  await app.listen({ path: socket });
  await fsp.chmod(socket, 0o600);
  return {
    path: socket,
    async close() {
      await app.close();
    },
  };
}

/**
 * A run as NDJSON: its info (at once, so the answer begins while the run still waits), its events
 * from now on, then its result or error.
 */
function stream(handle: RunHandle<unknown>): PassThrough {
  const out = new PassThrough();
  const send = (line: ControlLine) => {
    if (!out.destroyed) out.write(`${JSON.stringify(line)}\n`);
  };
  send({ run: handle.info });
  let phase = "";
  let last = 0;
  const stop = handle.subscribe((event) => {
    if (event.kind === "progress") {
      const now = performance.now();
      if (event.progress.phase === phase && now - last < PROGRESS_EVERY_MS) return;
      phase = event.progress.phase;
      last = now;
    }
    send({ event });
  });
  out.on("close", stop);
  handle.result
    .then(
      (result) => send({ result }),
      (e) => send({ error: toWireError(e) }),
    )
    .finally(() => {
      stop();
      out.end();
    });
  return out;
}
