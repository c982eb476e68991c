import { existsSync } from "node:fs";
import path from "node:path";
import { BschedError } from "../core/errors.ts";
import { writeFileAtomic } from "../platform/fsutil.ts";

/** The four standard sets (docs/design.md "The contract"), with the seed's defaults for a new install. */
export const STANDARD_SETS = [
  { id: "data", letter: "D", source: "Data", tab: "Data" },
  { id: "archive", letter: "A", source: "Archive", tab: "Archive" },
  { id: "inout", letter: "T", source: "Time", tab: "In/Out" },
  { id: "video", letter: "V", source: "Video", tab: "Video event" },
] as const;

export function defaultConfigText(root: string, timezone: string): string {
  const sets = STANDARD_SETS.map(
    (s) => `  ${s.id}:                 # seed tab "${s.tab}"
    letter: ${s.letter}
    source: ${s.source}
    automatic: true
    folder: default         # or an absolute path (the seed's "Specific folder")
    type: separate          # separate | compressed
    mode: full              # full | incremental
    # fullEvery: 7          # incremental: every 7th backup is a full (the default), so chains stay short
    frequency: weekly       # hourly | daily | weekly | monthly | every | now (now = on demand only)
    day: sunday             # weekly: monday..sunday; monthly: 1..31 or last; no day with other frequencies
    time: "04:00"           # 24-hour HH:MM (hourly: only the minutes count)
    # every: 15m            # with frequency every: 30s, 15m, 2h… (at least 10s)
`,
  ).join("");
  return `# bsched configuration (see README "Config"). Relative paths resolve from this file's folder.
server:
  root: ${JSON.stringify(root)}
  backupFolder: Backup      # the default folder, relative to root or absolute
  timezone: ${timezone}
sets:
${sets}`;
}

export async function initConfig(file: string, root: string): Promise<void> {
  const abs = path.resolve(file);
  if (existsSync(abs)) {
    throw new BschedError("CONFIG_EXISTS", `config file already exists: ${abs}`, {
      hint: "edit it, remove it first, or pass another --config FILE",
      exitCode: 2,
    });
  }
  const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC";
  await writeFileAtomic(abs, defaultConfigText(path.resolve(root), timezone), { exclusive: true });
}
