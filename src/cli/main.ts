import { Command, CommanderError } from "commander";
import { config as zodConfig } from "zod";
import { EXIT } from "../core/errors.ts";
import { VERSION } from "../version.ts";
import { printJson, quietOnClosedPipe, reportError } from "./output.ts";

/** A command's action returns its exit code through this box (commander actions return nothing). */
export interface ExitBox {
  code: number;
}

type Register = (program: Command, exit: ExitBox) => void;

/**
 * Each command's module, loaded only when that command runs (or for --help): a backup started
 * at 4 AM should not pay for the daemon's, the catalog's or the demo's dependencies.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  init: async () => (await import("./commands/init.ts")).registerInit,
  backup: async () => (await import("./commands/backup.ts")).registerBackup,
  copy: async () => (await import("./commands/copy.ts")).registerCopy,
  list: async () => (await import("./commands/list.ts")).registerList,
  restore: async () => (await import("./commands/restore.ts")).registerRestore,
  verify: async () => (await import("./commands/verify.ts")).registerVerify,
  drill: async () => (await import("./commands/drill.ts")).registerDrill,
  daemon: async () => (await import("./commands/daemon.ts")).registerDaemon,
  next: async () => (await import("./commands/next.ts")).registerNext,
  status: async () => (await import("./commands/status.ts")).registerStatus,
  history: async () => (await import("./commands/history.ts")).registerHistory,
  prune: async () => (await import("./commands/prune.ts")).registerPrune,
  catalog: async () => (await import("./commands/catalog.ts")).registerCatalog,
  config: async () => (await import("./commands/config.ts")).registerConfig,
  secret: async () => (await import("./commands/secret.ts")).registerSecret,
  notify: async () => (await import("./commands/notify.ts")).registerNotify,
  user: async () => (await import("./commands/user.ts")).registerUser,
  demo: async () => (await import("./commands/demo.ts")).registerDemo,
  service: async () => (await import("./commands/service.ts")).registerService,
};

/** The program with every command, or only `only` when it names one. */
export async function buildProgram(exit: ExitBox, only?: string): Promise<Command> {
  const program = new Command("bsched")
    .description("Backup scheduler for application servers' databases")
    .version(VERSION)
    .showHelpAfterError("(run `bsched --help` for usage)")
    .exitOverride();
  const names = only !== undefined && only in COMMANDS ? [only] : Object.keys(COMMANDS);
  for (const register of await Promise.all(names.map((n) => (COMMANDS[n] as () => Promise<Register>)()))) {
    register(program, exit);
  }
  return program;
}

let pipesQuiet = false;

export async function main(argv: string[]): Promise<number> {
  const exit: ExitBox = { code: 0 };
  if (!pipesQuiet) {
    // A closed stdout ends the output quietly, keeping the command's own exit code (README "Exit codes").
    quietOnClosedPipe(process.stdout);
    quietOnClosedPipe(process.stderr);
    pipesQuiet = true;
  }
  // A command checks its config and a few manifests once: zod's compiled fast path (a function
  // generated and compiled per object schema) costs more than it saves then. The daemon (and the
  // demo, which runs one) checks every API request: it keeps it (docs/design.md "Start-up").
  if (argv[2] !== "daemon" && argv[2] !== "demo") zodConfig({ jitless: true });
  try {
    const program = await buildProgram(exit, argv[2]);
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with code 0; anything else is bad usage.
      if (e.exitCode === 0) return 0;
      // commander told the person on stderr; a program that asked for --json reads stdout alone.
      if (argv.includes("--json")) {
        const command = argv[2] !== undefined && argv[2] in COMMANDS ? `${argv[2]} ` : "";
        printJson({
          error: {
            code: "USAGE",
            message: e.message.replace(/^error: /, ""),
            hint: `run \`bsched ${command}--help\` for usage`,
          },
        });
      }
      return EXIT.usage;
    }
    return reportError(e, argv.includes("--json"));
  }
  return exit.code;
}
