import { Command, CommanderError } from "commander";
import { VERSION } from "../version.ts";
import { registerBackup } from "./commands/backup.ts";
import { registerCatalog } from "./commands/catalog.ts";
import { registerDaemon } from "./commands/daemon.ts";
import { registerDemo } from "./commands/demo.ts";
import { registerHistory } from "./commands/history.ts";
import { registerInit } from "./commands/init.ts";
import { registerList } from "./commands/list.ts";
import { registerNext } from "./commands/next.ts";
import { registerPrune } from "./commands/prune.ts";
import { registerRestore } from "./commands/restore.ts";
import { registerStatus } from "./commands/status.ts";
import { registerVerify } from "./commands/verify.ts";
import { reportError } from "./output.ts";

/** A command's action returns its exit code through this box (commander actions return nothing). */
export interface ExitBox {
  code: number;
}

export function buildProgram(exit: ExitBox): Command {
  const program = new Command("bsched")
    .description("Backup scheduler for application servers' databases")
    .version(VERSION)
    .showHelpAfterError("(run `bsched --help` for usage)")
    .exitOverride();
  registerInit(program, exit);
  registerBackup(program, exit);
  registerList(program, exit);
  registerRestore(program, exit);
  registerDemo(program, exit);
  registerVerify(program, exit);
  registerDaemon(program, exit);
  registerNext(program, exit);
  registerStatus(program, exit);
  registerHistory(program, exit);
  registerPrune(program, exit);
  registerCatalog(program, exit);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const exit: ExitBox = { code: 0 };
  const program = buildProgram(exit);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with code 0; anything else is bad usage.
      return e.exitCode === 0 ? 0 : 2;
    }
    return reportError(e, argv.includes("--json"));
  }
  return exit.code;
}
