import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import { notifyTest, sendDigest } from "../../ops/notify.ts";
import { systemClock } from "../../platform/clock.ts";
import type { ExitBox } from "../main.ts";
import { out, printJson } from "../output.ts";
import { action } from "../run-action.ts";

const CONFIG_OPT = ["--config <file>", "config file (default: $BSCHED_CONFIG or ./bsched.yaml)"] as const;

export function registerNotify(program: Command, exit: ExitBox): void {
  const cmd = program
    .command("notify")
    .description("notifications (server.notify, a set's notify): send a test message, the weekly digest");
  cmd
    .command("test")
    .description(
      "send a test message to every channel (email, webhook); exit 1 naming what failed and the fix",
    )
    .option("--set <set>", "the channels of this set (its notify over server.notify); default server.notify")
    .option(...CONFIG_OPT)
    .option("--json", "print [{channel, target, ok}]")
    .action(
      action(exit, async (opts: { set?: string; config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const r = await notifyTest({ config, clock: systemClock }, { set: opts.set });
        if (opts.json) printJson(r);
        else for (const c of r) out(`${c.channel}: test message sent (${c.target})`);
        return 0;
      }),
    );
  cmd
    .command("digest")
    .description(
      "send the weekly digest now to server.notify.email (each set: backups, sizes, copies, last drill)",
    )
    .option("--print", "print it (plain text) instead of sending it")
    .option(...CONFIG_OPT)
    .option("--json", "print {sent, to, since, message: {subject, text, html}}")
    .action(
      action(exit, async (opts: { print?: boolean; config?: string; json?: boolean }) => {
        const config = loadConfig(opts.config);
        const r = await sendDigest({ config, clock: systemClock }, { print: opts.print });
        if (opts.json) printJson(r);
        else if (!r.sent) out(`Subject: ${r.message.subject}\n\n${r.message.text}`);
        else out(`digest sent to ${r.to.join(", ")}`);
        return 0;
      }),
    );
}
