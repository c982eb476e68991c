import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Config } from "../config/load.ts";
import { BschedError } from "../core/errors.ts";
import {
  fileExists,
  giveFolder,
  removeFile,
  runTool,
  systemdRunning,
  unitActiveState,
  userExists,
  writeUnitFile,
} from "../platform/systemd.ts";

export { systemdRunning } from "../platform/systemd.ts";

/**
 * `bsched service install|uninstall` and what `bsched status` says of the service (issue 14
 * item 4, docs/design.md "The system service"): a systemd unit that runs `bsched daemon` as a
 * dedicated user with the file system read-only but for the backup folders, the state folder and
 * the log's folder. Installing never touches the backups themselves beyond giving their folders to
 * that user; uninstalling removes the unit only (the user, the backups and the state stay).
 */

export const UNIT_NAME = "bsched.service";
export const SYSTEM_UNIT_DIR = "/etc/systemd/system";
export const DEFAULT_SERVICE_USER = "bsched";

/** bin/bsched.js of this copy of bsched: the unit runs the very code that wrote it. */
export const BIN_PATH = fileURLToPath(new URL("../../bin/bsched.js", import.meta.url));

export interface UnitOptions {
  user: string;
  /** Absolute path of the Node binary (default: the one running now, the project's). */
  node?: string;
  /** Absolute path of bin/bsched.js (default: this copy's). */
  bin?: string;
  /**
   * Also make every set's source folder writable (`--writable-sources`): the daemon can then put
   * its set lock (`.bsched-lock`) there, which tells the application to hold its databases
   * read-only during a backup. Without it the lock is reported as not possible (a notice) and each
   * SQLite database is still copied consistently by SQLite's online backup.
   */
  sources?: boolean;
}

/**
 * The folders the daemon writes: every set's local backup folder, every local destination's path
 * (a set's folder or a copy), the state folder (catalog, locks, secrets, a remote destination's
 * staging), each drilled set's scratch folder, and the folder of server.log.file. Sorted, without duplicates.
 */
export function writablePaths(config: Config, opts: { sources?: boolean } = {}): string[] {
  const out = new Set<string>([config.state]);
  if (opts.sources) for (const set of config.sets.values()) out.add(set.source);
  for (const set of config.sets.values()) {
    const spec = set.folderSpec;
    if (spec === undefined || spec.config.type === "local") out.add(set.folder);
  }
  for (const d of config.destinations.values()) if (d.config.type === "local") out.add(d.config.path);
  // A restore drill writes into its scratch folder (and nothing else).
  for (const set of config.sets.values()) if (set.drill !== undefined) out.add(set.drill.scratch);
  if (config.log.file !== undefined) out.add(path.dirname(config.log.file));
  return [...out].sort();
}

/** A unit-file word: quoted when it holds a space or a quote, `%` doubled (systemd's specifiers). */
function word(s: string): string {
  const t = s.replaceAll("%", "%%");
  return /[\s"'\\]/.test(t) ? `"${t.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"` : t;
}

/** The unit's text for this config (what `--print` shows and `install` writes). */
export function serviceUnit(config: Config, opts: UnitOptions): string {
  const node = opts.node ?? process.execPath;
  const bin = opts.bin ?? BIN_PATH;
  if (!/^[a-z_][a-z0-9_-]*\$?$/.test(opts.user))
    throw new BschedError("USAGE", `--user ${opts.user}: not a user name`, {
      hint: "a system user name such as bsched (lowercase letters, digits, - and _)",
    });
  // "-": a folder missing at start (an unmounted disk) does not stop the service from starting;
  // the daemon then reports it as it would anywhere (DESTINATION_MISSING).
  const rw = writablePaths(config, opts).map((p) => word(`-${p}`));
  return `# Written by \`bsched service install\` for ${config.file}.
# Remove with \`bsched service uninstall\`; changes here are lost at the next install.
[Unit]
Description=bsched backup scheduler (${config.file.replaceAll("%", "%%")})
After=network-online.target local-fs.target
Wants=network-online.target

[Service]
Type=simple
User=${opts.user}
ExecStart=${[node, bin, "daemon", "--config", config.file].map(word).join(" ")}
ExecReload=/bin/kill -HUP $MAINPID
# The daemon lets a running backup finish for up to 300 s after SIGTERM (--stop-timeout).
KillMode=mixed
TimeoutStopSec=330
Restart=on-failure
RestartSec=10s
# Logs: stderr to the journal (journalctl -u bsched), unless server.log.file is set.
StandardOutput=journal
StandardError=journal
SyslogIdentifier=bsched
# Least privilege: everything read-only but the backup folders, the state folder and the log's.
ProtectSystem=strict
ReadWritePaths=${rw.join(" ")}
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
UMask=0077

[Install]
WantedBy=multi-user.target
`;
}

export interface ServiceState {
  unit: string;
  installed: boolean;
  /** `systemctl is-active` (active, inactive, failed…); null when systemd is not running here. */
  active: string | null;
}

/** What `bsched status` says of the service (asynchronous: the daemon's API calls it too). */
export async function serviceState(unitDir = SYSTEM_UNIT_DIR): Promise<ServiceState> {
  const unit = path.join(unitDir, UNIT_NAME);
  const installed = fileExists(unit);
  if (!installed || !systemdRunning()) return { unit, installed, active: null };
  return { unit, installed, active: (await unitActiveState(UNIT_NAME)) || null };
}

export interface InstallOptions extends UnitOptions {
  /** Where the unit goes (default /etc/systemd/system); systemctl is only called for that one. */
  unitDir?: string;
  /** Progress lines for the person installing (stderr). */
  say?: (line: string) => void;
}

export interface InstallResult {
  unit: string;
  user: string;
  userCreated: boolean;
  writable: string[];
  /** true: enabled and started with systemctl; false: systemd is not running here (or another unit folder). */
  started: boolean;
}

/**
 * Write the unit (temporary name, fsync, rename), create the user if missing (useradd --system),
 * give it the folders it writes (created if missing: chown -R, so that retention can remove old
 * backups made by root before), then — when systemd runs and the unit went to its folder —
 * `systemctl daemon-reload` and `enable --now`.
 */
export async function installService(config: Config, opts: InstallOptions): Promise<InstallResult> {
  const say = opts.say ?? (() => undefined);
  const unitDir = opts.unitDir ?? SYSTEM_UNIT_DIR;
  const text = serviceUnit(config, opts);
  let userCreated = false;
  if (!userExists(opts.user)) {
    runTool(
      "useradd",
      [
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        config.state,
        "--shell",
        "/usr/sbin/nologin",
        opts.user,
      ],
      `creating the user ${opts.user}`,
    );
    userCreated = true;
    say(`created the system user ${opts.user}`);
  }
  // Sources stay the application's: made writable by the unit, never given to the service user.
  const writable = writablePaths(config);
  for (const p of writable) await giveFolder(p, opts.user);
  say(`${opts.user} owns ${writable.join(", ")}`);
  const unit = path.join(unitDir, UNIT_NAME);
  await writeUnitFile(unit, text);
  say(`wrote ${unit}`);
  let started = false;
  if (path.resolve(unitDir) === SYSTEM_UNIT_DIR && systemdRunning()) {
    runTool("systemctl", ["daemon-reload"], "systemctl daemon-reload");
    runTool("systemctl", ["enable", "--now", UNIT_NAME], `systemctl enable --now ${UNIT_NAME}`);
    started = true;
    say(`enabled and started ${UNIT_NAME}: journalctl -u bsched shows its log`);
  } else
    say(
      systemdRunning()
        ? `not started (the unit is not in ${SYSTEM_UNIT_DIR})`
        : "systemd is not running here: the unit is written, start it where systemd runs (systemctl enable --now bsched)",
    );
  return { unit, user: opts.user, userCreated, writable, started };
}

/** Stop and disable the service (when systemd runs), remove its unit; the user, backups and state stay. */
export async function uninstallService(
  opts: { unitDir?: string; say?: (line: string) => void } = {},
): Promise<{ unit: string; removed: boolean }> {
  const say = opts.say ?? (() => undefined);
  const unitDir = opts.unitDir ?? SYSTEM_UNIT_DIR;
  const unit = path.join(unitDir, UNIT_NAME);
  if (!fileExists(unit)) {
    say(`${unit} is not installed: nothing to do`);
    return { unit, removed: false };
  }
  const system = path.resolve(unitDir) === SYSTEM_UNIT_DIR && systemdRunning();
  if (system) runTool("systemctl", ["disable", "--now", UNIT_NAME], `systemctl disable --now ${UNIT_NAME}`);
  await removeFile(unit);
  if (system) runTool("systemctl", ["daemon-reload"], "systemctl daemon-reload");
  say(`removed ${unit} (the user, the backups and the state folder are kept)`);
  return { unit, removed: true };
}
