import type { HooksConfig } from "../config/schema.ts";
import { BschedError } from "../core/errors.ts";
import { type CommandOutcome, describeOutcome, runCommand } from "../platform/shell.ts";

/** `hooks:` of a set or of `server:`; `timeout` in seconds, default HOOK_TIMEOUT_S. */
export type { HooksConfig };

export const HOOK_TIMEOUT_S = 300;

export type HookPhase = "before" | "after";
/** `BSCHED_STATUS` of an `after` hook: the hook's own vocabulary (docs/live-databases.md), not a RunStatus. */
export type HookStatus = "success" | "failure" | "warnings";

export interface HookContext {
  set: string;
  source: string;
  /** The backup's name, when known (an `after` hook of a run that made one). */
  backup?: string | undefined;
  status?: HookStatus | undefined;
  /** Where each line of the hook's output goes (the log). */
  log: (line: string) => void;
}

export type HookOutcome = CommandOutcome;

/**
 * Run one hook command with `sh -c` in its own process group, its output sent line by line to
 * the log. On timeout the whole group (the shell and whatever it started) is terminated. The
 * outcome is returned, not thrown: the caller decides what a failure means for the run.
 */
export function runHookCommand(
  cmd: string,
  phase: HookPhase,
  ctx: HookContext,
  timeoutS = HOOK_TIMEOUT_S,
  scope = "set",
): Promise<HookOutcome> {
  const label = `hook ${scope} ${phase}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BSCHED_SET: ctx.set,
    BSCHED_SOURCE: ctx.source,
    BSCHED_PHASE: phase,
    BSCHED_BACKUP: ctx.backup ?? "",
    BSCHED_HOOK_SCOPE: scope,
  };
  if (phase === "after") env.BSCHED_STATUS = ctx.status ?? "failure";
  else delete env.BSCHED_STATUS;
  return runCommand("/bin/sh", ["-c", cmd], { env, label, log: ctx.log, timeoutS });
}

export interface HookLayer {
  scope: "server" | "set";
  hooks: HooksConfig | undefined;
}

/**
 * Run `body` between the `before` and `after` hooks of every layer (server first, then set; the
 * `after` hooks in reverse). A `before` that fails or hangs aborts the run before anything is
 * written, with HOOK_FAILED; every `after` whose `before` ran (or had none) runs whatever
 * happened, told the outcome in BSCHED_STATUS. A failing `after` does not undo a backup: it is
 * returned in `afterFailures` for the caller to report.
 */
export async function withHooks<T>(
  layers: HookLayer[],
  ctx: Omit<HookContext, "status" | "backup">,
  body: () => Promise<T>,
  outcome: (r: T) => { status: HookStatus; backup?: string },
): Promise<{ result: T; afterFailures: string[] }> {
  const entered: HookLayer[] = [];
  let result: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  try {
    for (const layer of layers) {
      const cmd = layer.hooks?.before;
      entered.push(layer);
      if (!cmd) continue;
      const timeoutS = layer.hooks?.timeout ?? HOOK_TIMEOUT_S;
      const o = await runHookCommand(cmd, "before", ctx, timeoutS, layer.scope);
      if (o.code !== 0 || o.timedOut) {
        throw new BschedError(
          "HOOK_FAILED",
          `set ${ctx.set}: the ${layer.scope} "before" hook ${describeOutcome(o, timeoutS)}; no backup was made`,
          { hint: `fix the command (${JSON.stringify(cmd)}) or its timeout, then run the backup again` },
        );
      }
    }
    result = { ok: true, value: await body() };
  } catch (e) {
    result = { ok: false, error: e };
  }
  const afterFailures: string[] = [];
  const end = result.ok ? outcome(result.value) : { status: "failure" as const };
  for (const layer of [...entered].reverse()) {
    const cmd = layer.hooks?.after;
    if (!cmd) continue;
    const timeoutS = layer.hooks?.timeout ?? HOOK_TIMEOUT_S;
    const o = await runHookCommand(cmd, "after", { ...ctx, ...end }, timeoutS, layer.scope);
    if (o.code !== 0 || o.timedOut) {
      afterFailures.push(`the ${layer.scope} "after" hook ${describeOutcome(o, timeoutS)}`);
    }
  }
  if (!result.ok) {
    if (afterFailures.length > 0) ctx.log(`set ${ctx.set}: also, ${afterFailures.join("; ")}`);
    throw result.error;
  }
  return { result: result.value, afterFailures };
}
