import type { EmailMessage } from "./email.ts";
import type { NotifyPayload } from "./webhook.ts";

/**
 * The email for one event: a subject that says what happened to which set on which host, and a
 * body (plain text, and the same as simple HTML) with the error, its code, its hint and what to
 * do. Pure: the same payload always makes the same message.
 */
export function composeMessage(p: NotifyPayload, opts: { repeatWindowMs: number }): EmailMessage {
  const rows: [string, string][] = [
    ["Set", p.set],
    ["Host", p.host],
  ];
  const add = (k: string, v: string | number | null | undefined) => {
    if (v !== undefined && v !== null && v !== "") rows.push([k, String(v)]);
  };
  add("Destination", p.destination);
  add("Backup", p.backup);
  add("Planned", p.planned);
  add("Started", p.startedAt);
  add("Finished", p.finishedAt);
  if (p.event === "success") {
    add("Files", p.files);
    add("Bytes", p.bytes);
    add("Warnings", p.warnings);
  }
  if (p.event === "missed") add("Missed slots", p.missedSlots);
  if (p.disk) {
    add("Folder", p.disk.path);
    add("Used", `${p.disk.usedPercent.toFixed(1)} % (threshold ${p.disk.thresholdPercent} %)`);
    add("Free", `${bytes(p.disk.freeBytes)} of ${bytes(p.disk.totalBytes)}`);
  }
  add("Error", p.error);
  add("Code", p.code);
  add("Hint", p.hint);
  const repeat =
    p.repeats !== undefined && p.repeats > 1
      ? `This happened ${p.repeats} times since ${p.since}. The same event is sent at most once per ${window(opts.repeatWindowMs)}; the others are counted.`
      : undefined;
  const checks = (p.checks ?? []).map(
    (c) => `${c.ok ? "ok    " : "FAILED"} ${c.name}${c.message ? `: ${c.message}` : ""}`,
  );
  const todo = whatToDo(p);
  const title = headline(p);
  const subject = `[bsched] ${p.host}: ${title}${p.code ? ` (${p.code})` : ""}${p.repeats !== undefined && p.repeats > 1 ? ` - ${p.repeats} times since ${p.since}` : ""}`;
  const width = Math.max(...rows.map(([k]) => k.length));
  const text = [
    title,
    "",
    ...rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`),
    ...(checks.length > 0 ? ["", "Checks:", ...checks.map((c) => `  ${c}`)] : []),
    ...(repeat ? ["", repeat] : []),
    "",
    "What to do:",
    ...todo.map((t) => `  - ${t}`),
    "",
    "-- bsched",
    "",
  ].join("\n");
  const html = [
    "<!doctype html><html><body>",
    `<h2>${esc(title)}</h2>`,
    '<table cellpadding="3">',
    ...rows.map(([k, v]) => `<tr><th align="left">${esc(k)}</th><td>${esc(v)}</td></tr>`),
    "</table>",
    ...(checks.length > 0
      ? [
          "<h3>Checks</h3><ul>",
          ...(p.checks ?? []).map(
            (c) =>
              `<li>${c.ok ? "ok" : "<b>FAILED</b>"} ${esc(c.name)}${c.message ? `: ${esc(c.message)}` : ""}</li>`,
          ),
          "</ul>",
        ]
      : []),
    ...(repeat ? [`<p>${esc(repeat)}</p>`] : []),
    "<h3>What to do</h3><ul>",
    ...todo.map((t) => `<li>${esc(t)}</li>`),
    "</ul><p>-- bsched</p></body></html>",
  ].join("\n");
  return { subject, text, html };
}

function headline(p: NotifyPayload): string {
  switch (p.event) {
    case "failure":
      return `backup of set ${p.set} FAILED`;
    case "success":
      return `backup of set ${p.set} ${p.status === "warnings" ? "done with warnings" : "done"}`;
    case "missed":
      return `set ${p.set}: ${p.missedSlots ?? 1} scheduled backup(s) missed`;
    case "copy_failed":
      return `copy of set ${p.set} to ${p.destination ?? "a destination"} FAILED`;
    case "drill_failed":
      return `restore drill of set ${p.set}${p.destination ? ` from ${p.destination}` : ""} FAILED`;
    case "disk_low":
      return `set ${p.set}: backup disk ${p.disk ? `${Math.floor(p.disk.usedPercent)} % ` : ""}full`;
  }
}

/** What an administrator does next, event by event; the error's own hint first. */
function whatToDo(p: NotifyPayload): string[] {
  const hint = p.hint ? [p.hint] : [];
  switch (p.event) {
    case "failure":
      return [
        ...hint,
        `then run \`bsched backup ${p.set}\` to try again now (the schedule tries at its next time anyway)`,
        `\`bsched history ${p.set}\` shows the past runs and their errors`,
      ];
    case "success":
      return [`nothing: \`bsched list ${p.set}\` shows the backups`];
    case "missed":
      return [
        p.status === "catch-up"
          ? "nothing for the backup: it runs once now (catchUp: once)"
          : `no backup ran for these slots (catchUp: skip): run \`bsched backup ${p.set}\` if one is needed before the next slot`,
        "the daemon was not running or the machine was off or suspended at the planned time: check that bsched runs as a service started at boot (`bsched status`)",
      ];
    case "copy_failed":
      return [
        ...hint,
        `then \`bsched copy ${p.set}${p.destination ? ` --to ${p.destination}` : ""}\` sends what the destination lacks (the next backup also tries); the backup itself is kept`,
      ];
    case "drill_failed":
      return [
        ...hint,
        `the backup${p.backup ? ` ${p.backup}` : ""}${p.destination ? ` on ${p.destination}` : ""} did not prove restorable: do not count on it; keep the older backups (check \`keep\`) until a drill passes`,
        `then \`bsched drill ${p.set}${p.destination ? ` --dest ${p.destination}` : ""}\` to prove it again`,
      ];
    case "disk_low":
      return [
        "free space on that filesystem, or keep fewer backups (`keep` of the set, then `bsched prune SET`), or move the backup folder to a larger disk",
        "a backup that finds the disk full fails, and the newest backups are the ones lost",
      ];
  }
}

function window(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : `${Math.round(ms / 60_000)} min`;
}

export function bytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
