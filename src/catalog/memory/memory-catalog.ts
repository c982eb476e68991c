import {
  type BackupRecord,
  type Catalog,
  type CopyRecord,
  type DrillRecord,
  maxIso,
  type NewRun,
  OWN_FOLDER,
  type RunOutcome,
  type RunRecord,
} from "../catalog.ts";
import { currentOwner } from "../interrupted.ts";

/** The same contract as the SQLite catalog, in memory: for tests and `--no-state` runs. */
export function memoryCatalog(): Catalog {
  const runs: RunRecord[] = [];
  const marks = new Map<string, string>();
  const backups = new Map<string, BackupRecord>();
  const copies = new Map<string, CopyRecord>();
  const drills: DrillRecord[] = [];
  let closed = false;
  const open = () => {
    if (closed) throw new Error("catalog is closed");
  };
  return {
    startRun(r: NewRun) {
      open();
      const rec: RunRecord = {
        id: runs.length + 1,
        set: r.set,
        planned: r.planned,
        trigger: r.trigger,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt ?? null,
        status: r.status ?? "running",
        warnings: 0,
        files: 0,
        bytes: 0,
        backup: null,
        error: r.error ?? null,
        errorCode: r.errorCode ?? null,
        errorHint: r.errorHint ?? null,
        slots: r.slots ?? 1,
        ...currentOwner(),
      };
      runs.push(rec);
      if (r.planned) marks.set(r.set, maxIso(marks.get(r.set), r.planned) as string);
      return rec.id;
    },
    finishRun(id: number, o: RunOutcome) {
      open();
      const rec = runs[id - 1];
      if (!rec) throw new Error(`no run ${id}`);
      Object.assign(rec, Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)));
    },
    getRun(id) {
      open();
      const r = runs[id - 1];
      return r ? { ...r } : undefined;
    },
    runs(filter = {}) {
      open();
      const all = runs
        .filter((r) => filter.set === undefined || r.set === filter.set)
        .filter((r) => filter.status === undefined || r.status === filter.status)
        .filter((r) => filter.statuses === undefined || filter.statuses.includes(r.status))
        .filter((r) => {
          const at = r.startedAt ?? r.finishedAt ?? r.planned ?? "";
          return (
            (filter.since === undefined || at >= filter.since) &&
            (filter.until === undefined || at < filter.until)
          );
        })
        .map((r) => ({ ...r }))
        .reverse();
      return filter.limit === undefined ? all : all.slice(0, filter.limit);
    },
    lastPlanned(set) {
      open();
      return marks.get(set);
    },
    markPlanned(set, planned) {
      open();
      marks.set(set, maxIso(marks.get(set), planned) as string);
    },
    putBackup(b) {
      open();
      backups.set(`${b.set}\0${b.destination}\0${b.name}`, { ...b });
    },
    removeBackup(set, name, destination = OWN_FOLDER) {
      open();
      backups.delete(`${set}\0${destination}\0${name}`);
    },
    backups(set) {
      open();
      return [...backups.values()]
        .filter((b) => set === undefined || b.set === set)
        .map((b) => ({ ...b }))
        .sort(byStartNameDestination);
    },
    putCopy(c) {
      open();
      copies.set(`${c.set}\0${c.destination}`, { ...c });
    },
    copies(set) {
      open();
      return [...copies.values()]
        .filter((c) => set === undefined || c.set === set)
        .map((c) => ({ ...c }))
        .sort((a, b) => a.set.localeCompare(b.set) || a.destination.localeCompare(b.destination));
    },
    addDrill(d) {
      open();
      const rec: DrillRecord = { ...d, checks: d.checks.map((c) => ({ ...c })), id: drills.length + 1 };
      drills.push(rec);
      return rec.id;
    },
    drills(filter = {}) {
      open();
      const all = drills
        .filter((d) => filter.set === undefined || d.set === filter.set)
        .filter((d) => filter.destination === undefined || d.destination === filter.destination)
        .filter((d) => filter.ok === undefined || d.ok === filter.ok)
        .map((d) => ({ ...d, checks: d.checks.map((c) => ({ ...c })) }))
        .reverse();
      return filter.limit === undefined ? all : all.slice(0, filter.limit);
    },
    close() {
      closed = true;
    },
  };
}

/** The SQLite catalog's order: `ORDER BY started_at, name, destination`. */
function byStartNameDestination(a: BackupRecord, b: BackupRecord): number {
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return cmp(a.startedAt, b.startedAt) || cmp(a.name, b.name) || cmp(a.destination, b.destination);
}
