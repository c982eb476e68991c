import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import { BschedError } from "../../core/errors.ts";
import { addUser, listUsers, removeUser, setPassword } from "../../ops/users.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { out, printJson, say } from "../output.ts";
import { readAllStdin, readHidden } from "../prompt.ts";
import { action } from "../run-action.ts";

const CONFIG_OPT = ["--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)"] as const;

/** The password: typed twice without echo on a terminal, or stdin with --stdin. Never an argument. */
async function readPassword(what: string, fromStdin: boolean): Promise<string> {
  if (fromStdin) return readAllStdin();
  if (!process.stdin.isTTY)
    throw new BschedError(
      "USAGE",
      `${what}: stdin is not a terminal, so the password cannot be asked for without echo`,
      {
        hint: `pass it on stdin with --stdin (never as an argument: the process list shows arguments)`,
      },
    );
  const first = await readHidden("password: ");
  const again = await readHidden("again: ");
  if (first !== again)
    throw new BschedError("USAGE", `${what}: the two entries differ; nothing changed`, {
      hint: "run it again and type the same password twice",
    });
  return first;
}

export function registerUser(program: Command, exit: ExitBox): void {
  const cmd = program
    .command("user")
    .description("the window's users (administrators), in the state folder's users.json");
  cmd
    .command("add")
    .description("add a user of the window (password asked twice without echo, or --stdin)")
    .argument("<name>", "letters, digits, . _ - @")
    .option("--stdin", "read the password from stdin (all of it, less one trailing newline)")
    .option(...CONFIG_OPT)
    .option("--json", "print {name, createdAt, passwordSetAt}")
    .action(
      action(exit, async (name: string, opts: { stdin?: boolean; config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const password = await readPassword(`user add ${name}`, opts.stdin === true);
        const r = await addUser({ state: config.state, name, password, clock: systemClock });
        if (opts.json) printJson(r);
        else out(`user ${r.name} added: log in to the window with this name and password`);
        return 0;
      }),
    );
  cmd
    .command("passwd")
    .description("set a user's password (asked twice without echo, or --stdin): their sessions end")
    .argument("<name>", "the user")
    .option("--stdin", "read the password from stdin (all of it, less one trailing newline)")
    .option(...CONFIG_OPT)
    .option("--json", "print {name, createdAt, passwordSetAt}")
    .action(
      action(exit, async (name: string, opts: { stdin?: boolean; config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const password = await readPassword(`user passwd ${name}`, opts.stdin === true);
        const r = await setPassword({ state: config.state, name, password, clock: systemClock });
        if (opts.json) printJson(r);
        else out(`password of ${r.name} changed: their open sessions are ended`);
        return 0;
      }),
    );
  cmd
    .command("list")
    .description("the users and when each was added and last given a password (never a hash)")
    .option(...CONFIG_OPT)
    .option("--json", "print {file, users: [{name, createdAt, passwordSetAt}]}")
    .action(
      action(exit, async (opts: { config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const r = listUsers(config.state);
        if (opts.json) printJson(r);
        else if (r.users.length === 0)
          say(`no users in ${r.file}: \`bsched user add NAME\`, or the setup link the daemon prints`);
        else for (const u of r.users) out(`${u.name}  added ${u.createdAt}  password set ${u.passwordSetAt}`);
        return 0;
      }),
    );
  cmd
    .command("remove")
    .description("remove a user: their sessions end at once")
    .argument("<name>", "the user")
    .option(...CONFIG_OPT)
    .option("--json", "print {name, file, left}")
    .action(
      action(exit, async (name: string, opts: { config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const r = await removeUser({ state: config.state, name, clock: systemClock });
        if (r.left === 0)
          say(
            "bsched: warning: no user is left: nobody can log in to the window until `bsched user add NAME` (or a daemon restart prints a setup link)",
          );
        if (opts.json) printJson(r);
        else out(`user ${r.name} removed from ${r.file}`);
        return 0;
      }),
    );
}
