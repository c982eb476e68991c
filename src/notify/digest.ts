import type { Catalog } from "../catalog/catalog.ts";
import type { Config } from "../config/load.ts";
import { nextRun } from "../schedule/schedule.ts";
import type { EmailMessage } from "./email.ts";
import { bytes, esc } from "./message.ts";

/** One set's week, as the digest shows it. */
export interface DigestSet {
  set: string;
  /** Backups made in the week (runs ok or with warnings). */
  made: number;
  failed: number;
  /** Bytes read by those backups. */
  bytes: number;
  /** Backups kept now (the set's own folder), and the bytes they take on disk where known. */
  kept: number;
  keptDiskBytes: number;
  newest: string | null;
  copies: { destination: string; ok: boolean; newest: string | null; at: string; error: string | null }[];
  /** The newest restore drill, when the catalog records drills (issue 14 item 1); null: none known. */
  lastDrill: { at: string; ok: boolean; destination: string | null; seconds: number | null } | null;
}

/** A week of every set from the catalog (`since`: the week's start). */
export function digestOf(config: Config, catalog: Catalog, since: Date): DigestSet[] {
  const from = since.toISOString();
  return [...config.sets.keys()].map((set) => {
    const runs = catalog.runs({ set, since: from });
    const done = runs.filter((r) => r.status === "ok" || r.status === "warnings");
    const kept = catalog.backups(set).filter((b) => b.destination === "folder");
    return {
      set,
      made: done.length,
      failed: runs.filter((r) => r.status === "failed" || r.status === "interrupted").length,
      bytes: done.reduce((n, r) => n + r.bytes, 0),
      kept: kept.length,
      keptDiskBytes: kept.reduce((n, b) => n + (b.diskBytes ?? b.storedBytes), 0),
      newest:
        kept
          .map((b) => b.name)
          .sort()
          .at(-1) ?? null,
      copies: catalog.copies(set).map((c) => ({
        destination: c.destination,
        ok: c.ok,
        newest: c.newest,
        at: c.at,
        error: c.error,
      })),
      lastDrill: lastDrill(catalog, set),
    };
  });
}

/** The newest restore drill of a set (from any place), from the catalog's drills table. */
function lastDrill(catalog: Catalog, set: string): DigestSet["lastDrill"] {
  try {
    const d = catalog.drills({ set, limit: 1 })[0];
    if (!d) return null;
    return {
      at: d.finishedAt,
      ok: d.ok,
      destination: d.destination,
      seconds: d.restoreMs === null ? null : Math.round(d.restoreMs / 1000),
    };
  } catch {
    return null;
  }
}

export function composeDigest(host: string, sets: DigestSet[], since: Date, now: Date): EmailMessage {
  const failing = sets.filter((s) => s.failed > 0 || s.made === 0 || s.copies.some((c) => !c.ok));
  const subject = `[bsched] ${host}: weekly digest - ${sets.reduce((n, s) => n + s.made, 0)} backups${failing.length > 0 ? `, ${failing.length} set(s) need a look` : ", all well"}`;
  const lines: string[] = [`Backups of ${host} from ${since.toISOString()} to ${now.toISOString()}`, ""];
  const html: string[] = [
    "<!doctype html><html><body>",
    `<h2>Backups of ${esc(host)}</h2><p>${esc(since.toISOString())} to ${esc(now.toISOString())}</p>`,
    '<table cellpadding="3" border="1" style="border-collapse:collapse">',
    "<tr><th>Set</th><th>Made</th><th>Failed</th><th>Read</th><th>Kept</th><th>On disk</th><th>Newest</th><th>Copies</th><th>Last drill</th></tr>",
  ];
  for (const s of sets) {
    const copies =
      s.copies.length === 0
        ? "none"
        : s.copies
            .map((c) => `${c.destination} ${c.ok ? "ok" : `FAILING (${c.error ?? "failed"})`}`)
            .join(", ");
    const drill = s.lastDrill
      ? `${s.lastDrill.ok ? "passed" : "FAILED"} ${s.lastDrill.at}${s.lastDrill.destination ? ` from ${s.lastDrill.destination}` : ""}${s.lastDrill.seconds !== null ? ` (restore ${s.lastDrill.seconds} s)` : ""}`
      : "no drill recorded";
    lines.push(
      `Set ${s.set}: ${s.made} backup(s) made, ${s.failed} failed, ${bytes(s.bytes)} read`,
      `  kept: ${s.kept} (${bytes(s.keptDiskBytes)} on disk), newest ${s.newest ?? "none"}`,
      `  copies: ${copies}`,
      `  last drill: ${drill}`,
      "",
    );
    html.push(
      `<tr><td>${esc(s.set)}</td><td>${s.made}</td><td>${s.failed}</td><td>${esc(bytes(s.bytes))}</td><td>${s.kept}</td><td>${esc(bytes(s.keptDiskBytes))}</td><td>${esc(s.newest ?? "none")}</td><td>${esc(copies)}</td><td>${esc(drill)}</td></tr>`,
    );
  }
  if (failing.length > 0)
    lines.push(
      `Need a look: ${failing.map((s) => s.set).join(", ")} (\`bsched status\` and \`bsched history SET\` say why)`,
      "",
    );
  lines.push("-- bsched", "");
  html.push("</table>");
  if (failing.length > 0)
    html.push(`<p><b>Need a look:</b> ${esc(failing.map((s) => s.set).join(", "))}</p>`);
  html.push("<p>-- bsched</p></body></html>");
  return { subject, text: lines.join("\n"), html: html.join("\n") };
}

/**
 * When the next digest is due: the first weekly slot after the last one sent (or, never sent,
 * after `start`: a new daemon does not send the digest of a week it did not see). A slot that
 * passed while the daemon was down is due at once, once.
 */
export function nextDigest(
  digest: { day: string; time: string },
  last: Date | undefined,
  start: Date,
  timezone: string,
): Date | undefined {
  return nextRun({ frequency: "weekly", day: digest.day, time: digest.time }, last ?? start, timezone);
}
