import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { BschedError } from "../../core/errors.ts";
import { type ConfigChangeResult, changeConfig, keyPath, readConfig, showConfig } from "../../ops/config.ts";
import type { ExitBox } from "../main.ts";
import { out, printJson, say } from "../output.ts";
import { action } from "../run-action.ts";

const CONFIG_OPT = ["--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)"] as const;

/** VALUE as YAML, like in the file: `7` a number, `true` a boolean, `'{ last: 8 }'` a map, `Europe/Paris` a string. */
function parseValue(text: string): unknown {
  try {
    return parseYaml(text);
  } catch (e) {
    throw new BschedError(
      "USAGE",
      `not a YAML value: ${JSON.stringify(text)} (${(e as Error).message.split("\n")[0]})`,
      {
        hint: `quote it as a YAML string, e.g. '"${text.replaceAll('"', '\\"')}"'`,
      },
    );
  }
}

function report(r: ConfigChangeResult, key: string, json: boolean, value?: unknown): number {
  for (const w of r.config.warnings) say(`bsched: warning: ${r.file}: ${w}`);
  if (json) {
    printJson({
      file: r.file,
      hash: r.hash,
      changed: r.changed,
      key,
      ...(value === undefined ? {} : { value }),
    });
  } else if (!r.changed) {
    out(`${key}: unchanged in ${r.file}`);
  } else {
    out(
      value === undefined
        ? `${key}: removed from ${r.file}`
        : `${key} = ${JSON.stringify(value)} in ${r.file}`,
    );
  }
  return 0;
}

export function registerConfig(program: Command, exit: ExitBox): void {
  const cmd = program
    .command("config")
    .description("show or change the config file (checked before it is written; comments kept)");
  cmd
    .command("show")
    .description("the config file as it is (secret values masked)")
    .option(...CONFIG_OPT)
    .option("--json", "print {file, hash, text, document, config, warnings}: config is the config as loaded")
    .action(
      action(exit, async (opts: { config?: string; json?: boolean }) => {
        const shown = showConfig(readConfig(opts.config));
        for (const w of shown.warnings) say(`bsched: warning: ${shown.file}: ${w}`);
        if (opts.json) printJson(shown);
        else
          process.stdout.write(
            shown.text.endsWith("\n") || shown.text === "" ? shown.text : `${shown.text}\n`,
          );
        return 0;
      }),
    );
  cmd
    .command("set")
    .description("set KEY (e.g. sets.data.keep.daily, server.timezone) to VALUE, read as YAML")
    .argument("<key>", "the key's path, segments joined by dots")
    .argument("<value>", "the value as YAML: 7, true, Europe/Paris, '{ last: 8, weekly: 4 }'")
    .option(...CONFIG_OPT)
    .option("--json", "print {file, hash, changed, key, value}")
    .action(
      action(exit, async (key: string, text: string, opts: { config?: string; json?: boolean }) => {
        keyPath(key);
        const value = parseValue(text);
        const r = await changeConfig({ file: opts.config, changes: [{ key, value }] });
        return report(r, key, opts.json === true, value);
      }),
    );
  cmd
    .command("unset")
    .description("remove KEY from the config (its default applies again)")
    .argument("<key>", "the key's path, segments joined by dots")
    .option(...CONFIG_OPT)
    .option("--json", "print {file, hash, changed, key}")
    .action(
      action(exit, async (key: string, opts: { config?: string; json?: boolean }) => {
        const r = await changeConfig({ file: opts.config, changes: [{ key, unset: true }] });
        return report(r, key, opts.json === true);
      }),
    );
}
