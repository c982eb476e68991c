import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { type Config, loadConfig, parseListen } from "../../config/load.ts";
import { BschedError, EXIT } from "../../core/errors.ts";
import { runDaemon } from "../../daemon/process.ts";
import { humanLog } from "../../demo/log.ts";
import { createDemoDatabases, demoConfigText } from "../../demo/seed.ts";
import { listUsers } from "../../ops/users.ts";
import { systemClock } from "../../platform/clock.ts";
import { writeFileAtomic } from "../../platform/fsutil.ts";
import type { ExitBox } from "../main.ts";
import { say } from "../output.ts";
import { action } from "../run-action.ts";

const APP = fileURLToPath(new URL("../../demo/app.ts", import.meta.url));

export function registerDemo(program: Command, exit: ExitBox): void {
  program
    .command("demo")
    .description(
      "run a sample server with live databases, its config, scheduled backups and the window (Ctrl-C stops)",
    )
    .option("--dir <dir>", "where to create the demo (reused if it exists)", "bsched-demo")
    .option(
      "--listen <host:port>",
      "where the window listens (default: the config's server.web.listen, 127.0.0.1:8420)",
    )
    .action(
      action(exit, async (opts: { dir: string; listen?: string }) => {
        const listen = opts.listen === undefined ? undefined : demoListen(opts.listen);
        const dir = path.resolve(opts.dir);
        const configFile = path.join(dir, "bsched.yaml");
        const root = path.join(dir, "server");
        if (existsSync(configFile)) {
          say(`reusing the demo in ${dir}`);
        } else {
          if (existsSync(root)) {
            // A demo interrupted while it was being created (the config is written last).
            throw new BschedError("USAGE", `${root} exists but ${configFile} does not`, {
              hint: `remove ${dir}, or choose another folder with --dir`,
            });
          }
          await fs.mkdir(dir, { recursive: true });
          await createDemoDatabases(root);
          const tz = Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC";
          await writeFileAtomic(configFile, demoConfigText(tz), { exclusive: true });
          say(`created a demo server in ${root} (Data, Archive, Time, Video: SQLite databases)`);
        }
        const config = loadConfig(configFile);
        say(`config: ${configFile}`);
        say(`backups go to: ${config.backupFolder}`);

        const app = spawn(process.execPath, [...process.execArgv, APP, root], {
          stdio: ["ignore", "inherit", "inherit"],
        });
        const appExited = new Promise<void>((resolve) => app.on("exit", () => resolve()));
        say("demo server: writing card swipes, punches and video events (4 per second)");
        const plan = [...config.sets.values()].map((set) => `${set.id} every ${set.every} s`).join(", ");
        say(`schedule (the daemon, on ${configFile}): ${plan}`);
        say(`try, in another terminal: npx bsched list --config ${configFile}`);
        say(`                          npx bsched status --config ${configFile}`);
        say(`                          npx bsched restore data --config ${configFile} --to /tmp/restored`);
        if (config.web.enabled) {
          const users = listUsers(config.state).users.map((u) => u.name);
          say(
            users.length === 0
              ? "the window: its address and a one-time setup link follow; open the link to create your administrator (or: npx bsched user add NAME --config …)"
              : `the window: its address follows; log in as ${users.join(" or ")} (forgotten: npx bsched user passwd NAME --config ${configFile})`,
          );
        }
        say("Ctrl-C stops everything.");
        // A terminal's Ctrl-C reaches the demo server too: only an exit of its own is news, and
        // then the daemon is stopped as Ctrl-C would.
        let stopping = false;
        const markStop = () => {
          stopping = true;
        };
        process.on("SIGINT", markStop);
        process.on("SIGTERM", markStop);
        appExited.then(() => {
          if (stopping) return;
          say("demo server: exited on its own; stopping");
          process.kill(process.pid, "SIGTERM");
        });
        // One restore drill of the data set once its first backup is made (issue 14): its result,
        // then where "last proven restorable" shows.
        const drill = demoDrill(config);
        // The real scheduler daemon on the demo's config: it handles SIGINT/SIGTERM (letting a
        // running backup finish) and returns.
        const code = await runDaemon({
          configFile,
          clock: systemClock,
          log: humanLog((line) => {
            say(line);
            drill.afterLine(line);
          }),
          stopGraceMs: 60_000,
          ...(listen ? { web: listen } : {}),
        });
        stopping = true;
        await drill.stop();
        process.off("SIGINT", markStop);
        process.off("SIGTERM", markStop);
        if (app.exitCode === null && app.signalCode === null) app.kill("SIGTERM");
        await appExited;
        if (code !== 0) return code;
        say(`stopped. The demo stays in ${dir}; run \`bsched demo --dir ${opts.dir}\` again to continue.`);
        return EXIT.ok;
      }),
    );
}

/**
 * The demo's drill: after the daemon's first backup of the data set, one `bsched drill data` of
 * the newest backup (in this process, with its own catalog connection; the set's lock keeps the
 * daemon's next backup of the set waiting meanwhile), its result printed as the CLI prints it.
 */
function demoDrill(config: Config): { afterLine(line: string): void; stop(): Promise<void> } {
  const set = config.sets.get("data");
  const abort = new AbortController();
  let running: Promise<void> | undefined;
  return {
    afterLine(line) {
      if (running || set === undefined || !/\] backup data: D_/.test(line)) return;
      running = (async () => {
        const { drillNow } = await import("../../ops/drill.ts");
        const { drillLines } = await import("./drill.ts");
        say("drill: restoring the newest data backup into a scratch folder to prove it restorable…");
        const r = await drillNow(
          { config, clock: systemClock, signal: abort.signal },
          { set, older: false, trigger: "manual" },
        );
        for (const d of r.drills) for (const l of drillLines(d)) say(l);
        say(
          `drill: "last proven restorable" now shows in \`npx bsched status --config ${config.file}\` and the window's Status`,
        );
      })().catch((e: Error) => say(`drill: not run: ${e.message}`));
    },
    async stop() {
      abort.abort();
      await running;
    },
  };
}

/** `--listen HOST:PORT` (port 0: any free one; the daemon's log says which). */
function demoListen(listen: string): { host: string; port: number } {
  const { host, port } = parseListen(listen);
  if (!host || !/^\d{1,5}$/.test(listen.slice(listen.lastIndexOf(":") + 1)) || port > 65535)
    throw new BschedError("USAGE", `--listen ${listen}: not HOST:PORT`, {
      hint: "such as 127.0.0.1:8420, or 127.0.0.1:0 for any free port",
    });
  return { host, port };
}
