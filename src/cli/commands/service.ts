import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import {
  DEFAULT_SERVICE_USER,
  installService,
  SYSTEM_UNIT_DIR,
  serviceUnit,
  uninstallService,
} from "../../ops/service.ts";
import type { ExitBox } from "../main.ts";
import { out, printJson, say } from "../output.ts";
import { action } from "../run-action.ts";

export function registerService(program: Command, exit: ExitBox): void {
  const service = program
    .command("service")
    .description(
      "run the daemon as a systemd service (a dedicated user, least privilege, restart on failure)",
    );
  service
    .command("install")
    .description(
      "write the systemd unit for `bsched daemon` on this config, create its user if missing, give it the backup and state folders, enable and start it",
    )
    .option("--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)")
    .option(
      "--user <name>",
      "the user the daemon runs as (created with useradd --system if missing)",
      DEFAULT_SERVICE_USER,
    )
    .option("--print", "only print the unit on stdout: no user, no file, no systemctl")
    .option(
      "--writable-sources",
      "also let the daemon write in the sets' source folders (its set lock, which holds the application read-only during a backup)",
    )
    .option(
      "--unit-dir <dir>",
      "where to write the unit (systemctl is only called for the default)",
      SYSTEM_UNIT_DIR,
    )
    .option("--json", "print {unit, user, userCreated, writable, started} as JSON")
    .action(
      action(
        exit,
        async (opts: {
          config?: string;
          user: string;
          print?: boolean;
          writableSources?: boolean;
          unitDir: string;
          json?: boolean;
        }) => {
          const config = loadConfig(opts.config);
          if (opts.print) {
            process.stdout.write(
              serviceUnit(config, { user: opts.user, sources: opts.writableSources === true }),
            );
            return 0;
          }
          const r = await installService(config, {
            user: opts.user,
            sources: opts.writableSources === true,
            unitDir: opts.unitDir,
            say,
          });
          if (opts.json) printJson(r);
          else out(r.unit);
          return 0;
        },
      ),
    );
  service
    .command("uninstall")
    .description(
      "stop and disable the service and remove its unit (its user, the backups and the state stay)",
    )
    .option("--unit-dir <dir>", "where the unit is", SYSTEM_UNIT_DIR)
    .option("--json", "print {unit, removed} as JSON")
    .action(
      action(exit, async (opts: { unitDir: string; json?: boolean }) => {
        const r = await uninstallService({ unitDir: opts.unitDir, say });
        if (opts.json) printJson(r);
        return 0;
      }),
    );
}
