import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import { BschedError } from "../../core/errors.ts";
import { listSecrets, removeSecret, secretReferences, setSecret } from "../../ops/secrets.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { out, printJson, say } from "../output.ts";
import { readAllStdin, readHidden } from "../prompt.ts";
import { action } from "../run-action.ts";

const CONFIG_OPT = ["--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)"] as const;

/** The value to store: typed twice without echo on a terminal, or stdin with --stdin. Never an argument. */
async function readValue(name: string, fromStdin: boolean): Promise<string> {
  if (fromStdin) return readAllStdin();
  if (!process.stdin.isTTY) {
    throw new BschedError(
      "USAGE",
      `secret set ${name}: stdin is not a terminal, so the value cannot be asked for without echo`,
      {
        hint: `pass it on stdin with --stdin: \`bsched secret set ${name} --stdin < FILE\` (never as an argument: the process list shows arguments)`,
      },
    );
  }
  const first = await readHidden(`value of secret ${name}: `);
  const again = await readHidden(`again: `);
  if (first !== again) {
    throw new BschedError("USAGE", `secret set ${name}: the two entries differ; nothing stored`, {
      hint: "run it again and type the same value twice",
    });
  }
  return first;
}

export function registerSecret(program: Command, exit: ExitBox): void {
  const cmd = program
    .command("secret")
    .description("the encrypted secret store in the state folder: config values written secret:NAME");
  cmd
    .command("set")
    .description("store a secret under NAME (asked twice without echo, or read from stdin with --stdin)")
    .argument("<name>", "the secret's name: letters, digits, - _ .")
    .option("--stdin", "read the value from stdin (all of it, less one trailing newline)")
    .option(...CONFIG_OPT)
    .option("--json", "print {name, file, setAt, replaced, keyFile, keyFrom, keyCreated}")
    .action(
      action(exit, async (name: string, opts: { stdin?: boolean; config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const value = await readValue(name, opts.stdin === true);
        const r = await setSecret({ state: config.state, name, value, clock: systemClock });
        if (r.keyCreated) {
          say(
            `bsched: created the key ${r.keyFile} (mode 0600): keep a copy apart from this machine's backups; without it the stored secrets cannot be read`,
          );
        }
        if (opts.json) printJson(r);
        else
          out(
            `secret ${r.name} ${r.replaced ? "replaced" : "stored"} in ${r.file} (key: ${r.keyFile}, ${r.keyFrom})`,
          );
        return 0;
      }),
    );
  cmd
    .command("list")
    .description("the names stored and when each was set (never a value)")
    .option(...CONFIG_OPT)
    .option(
      "--json",
      "print {file, secrets: [{name, setAt}], missing: [{key, name}]} (missing: named by the config, not stored)",
    )
    .action(
      action(exit, async (opts: { config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const r = listSecrets(config.state, config);
        for (const m of r.missing) {
          say(
            `bsched: warning: ${m.key} names the secret "${m.name}", not stored: \`bsched secret set ${m.name}\``,
          );
        }
        if (opts.json) printJson(r);
        else if (r.secrets.length === 0) say(`no secrets stored in ${r.file}`);
        else for (const s of r.secrets) out(`${s.name}  set ${s.setAt}`);
        return 0;
      }),
    );
  cmd
    .command("remove")
    .description("remove the secret NAME from the store")
    .argument("<name>", "the secret's name")
    .option(...CONFIG_OPT)
    .option("--json", "print {name, file}")
    .action(
      action(exit, async (name: string, opts: { config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const r = await removeSecret({ state: config.state, name, clock: systemClock });
        for (const ref of secretReferences(config).filter((x) => x.name === r.name)) {
          say(
            `bsched: warning: ${ref.key} still names the secret "${r.name}": it fails until it is set again`,
          );
        }
        if (opts.json) printJson(r);
        else out(`secret ${r.name} removed from ${r.file}`);
        return 0;
      }),
    );
}
