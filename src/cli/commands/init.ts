import path from "node:path";
import type { Command } from "commander";
import { initConfig } from "../../config/init.ts";
import type { ExitBox } from "../main.ts";
import { out } from "../output.ts";
import { action } from "../run-action.ts";

export function registerInit(program: Command, exit: ExitBox): void {
  program
    .command("init")
    .description(
      "write a config with the four standard sets (data, archive, inout, video) and the default schedule",
    )
    .option("--root <dir>", "the server root: the folder holding the databases", ".")
    .option("--config <file>", "where to write the config", "bsched.yaml")
    .action(
      action(exit, async (opts: { root: string; config: string }) => {
        const file = path.resolve(opts.config);
        await initConfig(file, opts.root);
        out(`wrote ${file}: sets data (D, Data), archive (A, Archive), inout (T, Time), video (V, Video);`);
        out("every set: automatic, weekly on sunday at 04:00, separate files, full. Edit it to change.");
        return 0;
      }),
    );
}
