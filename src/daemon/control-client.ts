import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { BschedError, type ErrorCode, errnoCode } from "../core/errors.ts";
import { type BackupNowOptions, type BackupNowResult, backupNow } from "../ops/backup-now.ts";
import type { OpContext, ProgressSink } from "../ops/context.ts";
import { hostName } from "../platform/host.ts";
import { DAEMON_SOCKET } from "../platform/names.ts";
import type { ControlLine, WireError } from "./control.ts";
import { daemonState } from "./state-lock.ts";

/**
 * A manual backup: through the daemon's queue when a daemon runs for this state folder (its lock
 * is live and its control socket answers), so it never races a scheduled run of the set; in this
 * process otherwise (no daemon, a daemon on another host, a dead socket left by a killed one).
 * Either way the same result, events and errors: the caller cannot tell, except by the first
 * event, a `log` line saying the daemon runs it.
 */
export async function backupNowOrViaDaemon(ctx: OpContext, opts: BackupNowOptions): Promise<BackupNowResult> {
  const viaDaemon = await backupViaDaemon(ctx, opts);
  return viaDaemon ?? backupNow(ctx, opts);
}

/** The backup run by the live daemon of `ctx.config.state`; undefined when there is none to ask. */
export async function backupViaDaemon(
  ctx: OpContext,
  opts: BackupNowOptions,
): Promise<BackupNowResult | undefined> {
  const daemon = await daemonState(ctx.config, ctx.clock.now());
  if (!daemon.running || daemon.host !== hostName()) return undefined;
  const socketPath = path.join(ctx.config.state, DAEMON_SOCKET);
  if (!fs.existsSync(socketPath)) return undefined;
  const emit: ProgressSink = ctx.progress ?? (() => undefined);
  const body = JSON.stringify({
    set: opts.set.id,
    ...(opts.mode ? { mode: opts.mode } : {}),
    ...(opts.type ? { type: opts.type } : {}),
    ...(opts.prune === false ? { prune: false } : {}),
  });
  return new Promise<BackupNowResult | undefined>((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method: "POST",
        path: "/runs",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.setEncoding("utf8");
        let buf = "";
        let settled = false;
        const finish = (line: ControlLine) => {
          if ("run" in line) {
            emit({ kind: "log", line: `the daemon (pid ${daemon.pid}) runs this backup in its queue` });
            // Our signal (Ctrl-C) cancels the daemon's run; its stream then ends with the run's error.
            const id = line.run.id;
            const cancel = () => void cancelRun(socketPath, id);
            if (ctx.signal?.aborted) cancel();
            else ctx.signal?.addEventListener("abort", cancel, { once: true });
            res.on("close", () => ctx.signal?.removeEventListener("abort", cancel));
          } else if ("event" in line) emit(line.event);
          else if ("result" in line) {
            settled = true;
            resolve(line.result as BackupNowResult);
          } else if ("error" in line) {
            settled = true;
            reject(fromWire(line.error));
          }
        };
        res.on("data", (chunk: string) => {
          buf += chunk;
          for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
            const text = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (text.trim() === "") continue;
            try {
              finish(JSON.parse(text) as ControlLine);
            } catch (e) {
              settled = true;
              reject(e);
              res.destroy();
            }
          }
        });
        res.on("end", () => {
          if (settled) return;
          if (res.statusCode !== 200 && buf.trim() !== "") {
            try {
              const { error } = JSON.parse(buf) as { error: WireError };
              return reject(fromWire(error));
            } catch {}
          }
          reject(cutShort(opts.set.id, `the daemon's answer ended early (HTTP ${res.statusCode})`));
        });
        res.on("error", (e) => {
          if (!settled) reject(cutShort(opts.set.id, e.message));
        });
      },
    );
    req.on("error", (e) => {
      // Nothing listens (a killed daemon's socket, a daemon between its lock and its socket): the
      // request never reached a daemon, so running here is safe.
      const code = errnoCode(e);
      if (code === "ECONNREFUSED" || code === "ENOENT") return resolve(undefined);
      // The socket is the daemon's user's (0600): another user's backup would race the daemon's
      // runs if it went on here, so it is refused, saying whose daemon it is.
      if (code === "EACCES" || code === "EPERM")
        return reject(
          new BschedError(
            "PERMISSION_DENIED",
            `a daemon (pid ${daemon.pid}) runs for the state folder ${ctx.config.state}, and its control socket ${socketPath} is not open to this user`,
            {
              hint: `run \`bsched backup ${opts.set.id}\` as the user the daemon runs as (e.g. with sudo), so that it joins the daemon's queue`,
            },
          ),
        );
      reject(cutShort(opts.set.id, e.message));
    });
    req.end(body);
  });
}

/** Ask the daemon to cancel run `id` (best effort: the stream says what became of it). */
function cancelRun(socketPath: string, id: string): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(
      { socketPath, method: "DELETE", path: `/runs/${encodeURIComponent(id)}` },
      (res) => {
        res.resume();
        res.on("end", () => resolve());
      },
    );
    req.on("error", () => resolve());
    req.end();
  });
}

function fromWire(w: WireError): Error {
  if (w.code === "INTERNAL") return new Error(w.message);
  return new BschedError(w.code as ErrorCode, w.message, {
    ...(w.hint ? { hint: w.hint } : {}),
    exitCode: w.exitCode,
  });
}

function cutShort(set: string, why: string): BschedError {
  return new BschedError("IO", `lost the daemon while it backed up set ${set}: ${why}`, {
    hint: `the daemon may still run it: see \`bsched history ${set}\` and the daemon's log before running it again`,
  });
}
