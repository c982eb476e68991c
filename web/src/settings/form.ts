import type { FieldError, Keep, SetSettings } from "../api.ts";

/*
 * A set's tab as a form: every control's value as the user sees it (text for numbers and times,
 * so a bad value stays visible beside its error), and the conversions to and from the config's
 * keys. A save sends the whole set; the daemon writes only what differs from the file, so
 * bsched.yaml gets exactly the changed keys and keeps the rest of its text, comments included.
 */

export const WEEKDAYS = [
  "monday",
  "tuesday",
  "wednesday",
  "thursday",
  "friday",
  "saturday",
  "sunday",
] as const;

/** The seed's four frequencies; the config's others (hourly, every) are shown when a set uses them. */
export const SEED_FREQUENCIES = ["weekly", "monthly", "daily", "now"] as const;

/** The seed's "Backup type" list: type and mode together. */
export const KINDS = [
  { type: "separate", mode: "full", label: "Separate files (full backup)" },
  { type: "compressed", mode: "full", label: "Self-extracting compressed file (full backup)" },
  { type: "separate", mode: "incremental", label: "Separate files (incremental)" },
  { type: "compressed", mode: "incremental", label: "Self-extracting compressed file (incremental)" },
] as const;

export interface SetForm {
  automatic: boolean;
  folderKind: "default" | "specific";
  folder: string;
  type: "separate" | "compressed";
  mode: "full" | "incremental";
  frequency: string;
  day: string;
  time: string;
  every: string;
  copies: string[];
  keep: Record<keyof Keep, string>;
}

const KEEP_KEYS = ["last", "daily", "weekly", "monthly"] as const;

export function fromSettings(s: SetSettings): SetForm {
  return {
    automatic: s.automatic,
    folderKind: s.folder === "default" ? "default" : "specific",
    folder: s.folder === "default" ? "" : s.folder,
    type: s.type,
    mode: s.mode,
    frequency: s.frequency,
    day: s.day === undefined || s.day === null ? defaultDay(s.frequency) : String(s.day),
    time: s.time,
    every: s.every ?? "",
    copies: [...s.copies],
    keep: {
      last: s.keep?.last?.toString() ?? "",
      daily: s.keep?.daily?.toString() ?? "",
      weekly: s.keep?.weekly?.toString() ?? "",
      monthly: s.keep?.monthly?.toString() ?? "",
    },
  };
}

/** The day a frequency starts with when chosen: the seed's default Sunday, or the 1st. */
export function defaultDay(frequency: string): string {
  return frequency === "monthly" ? "1" : frequency === "weekly" ? "sunday" : "";
}

/** The day kept when the frequency changes: the same when it still means something, else the default. */
export function dayFor(frequency: string, day: string): string {
  const weekday = (WEEKDAYS as readonly string[]).includes(day);
  if (frequency === "weekly") return weekday ? day : "sunday";
  if (frequency === "monthly") return !weekday && day !== "" ? day : "1";
  return "";
}

export const hasDay = (frequency: string) => frequency === "weekly" || frequency === "monthly";

/** A text field's number as the config wants it; what is not a number is sent as typed (the server says why). */
function num(v: string): number | string {
  const t = v.trim();
  return /^\d+$/.test(t) ? Number(t) : t;
}

/**
 * The whole set this form stands for, as PUT /api/settings/sets/:set wants it: the set as read
 * (keys the window does not edit, such as hooks or compression, go back as they were) with the
 * form's values; a key the form leaves out (a day for a daily set) is removed from the file.
 */
export function toSettings(f: SetForm, original: SetSettings): SetSettings {
  const keep: Keep = {};
  for (const k of KEEP_KEYS)
    if (f.keep[k].trim() !== "") (keep as Record<string, unknown>)[k] = num(f.keep[k]);
  const { day: _day, every: _every, keep: _keep, ...rest } = original as SetSettings & { id?: string };
  delete (rest as { id?: string }).id;
  return {
    ...rest,
    automatic: f.automatic,
    folder: f.folderKind === "default" ? "default" : f.folder.trim(),
    type: f.type,
    mode: f.mode,
    frequency: f.frequency,
    ...(hasDay(f.frequency) ? { day: f.frequency === "monthly" ? num(f.day) : f.day } : {}),
    time: f.time.trim(),
    ...(f.frequency === "every" ? { every: f.every.trim() } : {}),
    copies: f.copies,
    ...(Object.keys(keep).length > 0 ? { keep } : {}),
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The keys of a set the tab edits: what a change is made of, and what a field error can name. */
const EDITED_KEYS = [
  "automatic",
  "folder",
  "type",
  "mode",
  "frequency",
  "day",
  "time",
  "every",
  "copies",
  "keep",
] as const;

/** The keys whose value differs from the config's (the tab's "changed" mark; nothing to write when none). */
export function changes(f: SetForm, original: SetSettings): string[] {
  const next = toSettings(f, original) as unknown as Record<string, unknown>;
  const old = original as unknown as Record<string, unknown>;
  const out: string[] = [];
  for (const key of EDITED_KEYS) {
    const a = old[key] ?? undefined;
    const b = next[key] ?? undefined;
    // A monthly day read as "1" and sent as 1 is the same day.
    if (key === "day" && a !== undefined && b !== undefined && String(a) === String(b)) continue;
    if (!same(a, b)) out.push(key);
  }
  return out;
}

/** The form's field an API error names (`["sets","archive","time"]` → "time"); undefined: the set as a whole. */
export function fieldOf(e: FieldError, setId: string): string | undefined {
  const names = new Set<string>(EDITED_KEYS);
  const path = e.path.filter((p, i) => !(i === 0 && (p === "sets" || p === "settings")) && p !== setId);
  return path.map(String).find((p) => names.has(p));
}

export function fieldErrors(
  errors: FieldError[],
  setId: string,
): { byField: Record<string, string>; other: string[] } {
  const byField: Record<string, string> = {};
  const other: string[] = [];
  for (const e of errors) {
    const f = fieldOf(e, setId);
    if (f === undefined) other.push(e.message);
    else byField[f] = byField[f] ? `${byField[f]}; ${e.message}` : e.message;
  }
  return { byField, other };
}
