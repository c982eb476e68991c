import { z } from "zod";
import { lazy } from "../core/lazy.ts";
import { BACKUP_MODES, BACKUP_TYPES, FREQUENCIES, NOTIFY_EVENTS, type NotifyEvent } from "../core/types.ts";
import { destinationSchemas } from "./destinations.ts";

export const WEEKDAYS = [
  "monday",
  "tuesday",
  "wednesday",
  "thursday",
  "friday",
  "saturday",
  "sunday",
] as const;

function isTimeZone(tz: string): boolean {
  // Checking a zone makes Node load ICU's date data, a quarter of a bare Node start-up; UTC needs
  // none, and `list` on a UTC server then never pays it (docs/design.md "Start-up").
  if (tz === "UTC" || tz === "Etc/UTC") return true;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Seconds of an `every` duration ("30s", "15m", "2h"). */
export function everySeconds(d: string): number {
  const n = Number.parseInt(d, 10);
  return d.endsWith("h") ? n * 3600 : d.endsWith("m") ? n * 60 : n;
}

const isMonthDay = (d: string | number) =>
  d === "last" ||
  (typeof d === "number" ? Number.isInteger(d) && d >= 1 && d <= 31 : /^([1-9]|[12]\d|3[01])$/.test(d));

export const EMAIL_SECURITY = ["starttls", "tls", "none"] as const;

/** Bytes of a size such as "20GB", "500MB", "1.5TiB" or a plain number of bytes (GB = 10^9, GiB = 2^30). */
export function sizeBytes(v: string | number): number {
  if (typeof v === "number") return v;
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?$/i.exec(v.trim());
  if (!m) return Number.NaN;
  const unit = (m[2] ?? "B").toUpperCase();
  const power = "BKMGT".indexOf(unit[0] as string);
  const base = unit.includes("I") ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** power);
}

const SIZE_MESSAGE = 'a size such as "20GB", "500MB" or "2TiB" (or a number of bytes), above 0';

/** The checks a schedule's keys get (a set's, a drill's): each message names what is allowed. */
function scheduleIssues(
  s: { frequency: string; every?: string | undefined; day?: string | number | undefined },
  ctx: z.RefinementCtx,
): void {
  if (s.frequency === "every" && s.every === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["every"],
      message: 'with frequency every: a duration such as "30s", "15m" or "2h"',
    });
  }
  if (s.every !== undefined && s.frequency !== "every") {
    ctx.addIssue({ code: "custom", path: ["every"], message: "only with frequency every" });
  }
  if (s.every !== undefined && everySeconds(s.every) < 10) {
    ctx.addIssue({ code: "custom", path: ["every"], message: "at least 10s" });
  }
  const day = s.day;
  if (s.frequency === "weekly" && day !== undefined && !(WEEKDAYS as readonly unknown[]).includes(day)) {
    ctx.addIssue({ code: "custom", path: ["day"], message: "with frequency weekly: monday..sunday" });
  }
  if (s.frequency === "monthly" && day !== undefined && !isMonthDay(day)) {
    ctx.addIssue({ code: "custom", path: ["day"], message: 'with frequency monthly: 1..31 or "last"' });
  }
  if (s.frequency !== "weekly" && s.frequency !== "monthly" && day !== undefined) {
    // A day the schedule ignores would silently not mean what its writer thought.
    ctx.addIssue({
      code: "custom",
      path: ["day"],
      message: `only with frequency weekly or monthly (frequency ${s.frequency} has no day: remove it)`,
    });
  }
}

/** `HOST:PORT`, an IPv6 host in brackets: `[::1]:8420`. */
const LISTEN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** A size such as "10MB", "512KB", "1GB" (decimal units), or a number of bytes (read by sizeBytes above). */
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?$/i;

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/i;

/**
 * Every set's email, its own keys over `server.notify.email`, must be complete; `security: none`
 * (password and messages in clear) only to this machine.
 */
function checkEmail(
  c: {
    server: { notify?: { email?: EmailConfig | undefined } | undefined };
    sets: Record<string, { notify?: { email?: Partial<EmailConfig> | undefined } | undefined }>;
  },
  ctx: z.RefinementCtx,
): void {
  const server = c.server.notify?.email;
  const check = (e: Partial<EmailConfig>, at: (string | number)[]) => {
    for (const k of ["host", "from", "to"] as const) {
      if (e[k] === undefined)
        ctx.addIssue({
          code: "custom",
          path: [...at, k],
          message: `${k} (here or in server.notify.email, which every set's email completes)`,
        });
    }
    if (e.security === "none" && e.host !== undefined && !LOOPBACK.test(e.host))
      ctx.addIssue({
        code: "custom",
        path: [...at, "security"],
        message: `starttls or tls: security none sends the password and the messages in clear, so only to a server on this machine (localhost, 127.0.0.1, ::1), not ${e.host}`,
      });
  };
  if (server) check(server, ["server", "notify", "email"]);
  for (const [id, s] of Object.entries(c.sets)) {
    if (s.notify?.email) check({ ...server, ...s.notify.email }, ["sets", id, "notify", "email"]);
  }
}

/**
 * The config's schemas, built at their first use, not at import: zod makes hundreds of objects,
 * and a command whose config check is cached (src/config/cache.ts) needs none of them
 * (docs/design.md "Start-up").
 */
function build() {
  const { destinationSchema, secretValue, serviceLoginSchema } = destinationSchemas();
  const timeOfDay = z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { message: 'a 24-hour time "HH:MM" from "00:00" to "23:59"' });

  // The day's allowed values depend on the frequency: checked (with a message saying so) below.
  /** `every` of a set or a drill: a run every so many seconds, minutes or hours. */
  const everyValue = z
    .string()
    .regex(/^[1-9]\d*(s|m|h)$/, { message: 'a duration such as "30s", "15m" or "2h"' });
  const dayValue = z.union([z.string(), z.number()], { error: 'monday..sunday, 1..31 or "last"' });
  const keepSchema = z
    .strictObject({
      last: z.number().int().min(0).optional(),
      daily: z.number().int().min(0).optional(),
      weekly: z.number().int().min(0).optional(),
      monthly: z.number().int().min(0).optional(),
    })
    .refine((k) => [k.last, k.daily, k.weekly, k.monthly].some((n) => (n ?? 0) > 0), {
      message:
        "a policy that keeps something: at least one of last, daily, weekly, monthly above 0 (remove `keep` to keep every backup)",
    });

  const hooksSchema = z.strictObject({
    before: z.string().optional(),
    after: z.string().optional(),
    timeout: z.number().positive().optional(),
  });

  const address = z.string().regex(/^[^\s@]+@[^\s@]+$|^[^<>]*<[^\s@<>]+@[^\s@<>]+>$/, {
    message: 'an email address, "backup@example.com" or "Backups <backup@example.com>"',
  });

  /**
   * How bsched sends email (docs/design.md "Notifications"): an SMTP server, its security
   * (`starttls`: port 587, upgraded before the login, refused if the server cannot; `tls`: port 465,
   * TLS from the start; `none`: only to a server on this machine), a login whose password is a
   * secret (`secret:NAME`), the sender and the recipients. `ca`: a PEM file of a private CA the
   * server's certificate is checked against (else the system's).
   */
  const emailFields = {
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).optional(),
    security: z.enum(EMAIL_SECURITY).optional(),
    user: z.string().min(1).optional(),
    password: secretValue.optional(),
    from: address,
    to: z.array(address).min(1, { message: "one address at least" }),
    ca: z.string().min(1).optional(),
  };
  const emailSchema = z.strictObject(emailFields);
  /** A set's `notify.email`: any of the server's keys (`to` for this set's own recipients), over `server.notify.email`. */
  const setEmailSchema = z.strictObject({
    ...emailFields,
    host: emailFields.host.optional(),
    from: emailFields.from.optional(),
    to: emailFields.to.optional(),
  });

  const notifyEvents = z.array(z.enum(NOTIFY_EVENTS));

  const notifySchema = z.strictObject({
    webhook: z.url().optional(),
    email: setEmailSchema.optional(),
    on: notifyEvents.optional(),
  });

  /** `server.notify`: the defaults every set's `notify` completes, and what is not a set's (disk, digest). */
  const serverNotifySchema = z.strictObject({
    webhook: z.url().optional(),
    email: emailSchema.optional(),
    on: notifyEvents.optional(),
    /** After each backup: a `disk_low` event when the backup folder's filesystem is fuller than this. */
    diskWarnPercent: z.number().min(1).max(100).default(90),
    /** The same failure again (same set, event, code) within this is counted, not mailed: one summary after. */
    repeatWindow: z
      .string()
      .regex(/^[1-9]\d*(m|h)$/, { message: 'a duration such as "30m" or "6h"' })
      .default("6h"),
    /** A weekly email summing up each set (backups, sizes, copies, last drill). */
    digest: z
      .strictObject({
        day: z.enum(WEEKDAYS).default("monday"),
        time: timeOfDay.default("08:00"),
      })
      .optional(),
  });

  /**
   * A set's restore drill (issue 14, docs/design.md "Restore drills"): when (a schedule like the
   * set's own), from where (`local`: the set's own backup folder; else destinations' names), into
   * which scratch folder, how large a restore may be, and an optional command checking the result.
   */
  const drillSchema = z
    .strictObject({
      frequency: z.enum(FREQUENCIES).default("weekly"),
      every: everyValue.optional(),
      day: dayValue.optional(),
      time: timeOfDay.default("06:00"),
      from: z
        .array(z.string().min(1))
        .min(1, { message: "at least one place: local, or a destination's name" })
        .default(["local"]),
      scratch: z.string().min(1).default("/var/tmp/bsched-drill"),
      maxSize: z
        .union([z.string(), z.number()], { error: SIZE_MESSAGE })
        .refine((v) => sizeBytes(v) > 0, { message: SIZE_MESSAGE })
        .default("20GB"),
      check: z.string().min(1).optional(),
      /** Seconds the check command may run before it is terminated (and the drill failed). */
      timeout: z.number().positive().default(3600),
    })
    .superRefine((d, ctx) => scheduleIssues(d, ctx));

  const setSchema = z
    .strictObject({
      letter: z.string().regex(/^[A-Z]$/, { message: "one capital letter A-Z" }),
      source: z.string().min(1),
      automatic: z.boolean().default(true),
      folder: z.string().min(1).default("default"),
      type: z.enum(BACKUP_TYPES).default("separate"),
      mode: z.enum(BACKUP_MODES).default("full"),
      // The full cadence of an incremental set (docs/design.md "The full cadence"): a chain that
      // never ends can never be pruned and makes every restore replay more.
      fullEvery: z
        .number({ message: "a whole number of backups, 1 or more (every Nth backup is a full)" })
        .int({ message: "a whole number of backups, 1 or more (every Nth backup is a full)" })
        .min(1, { message: "a whole number of backups, 1 or more (every Nth backup is a full)" })
        .optional(),
      frequency: z.enum(FREQUENCIES).default("weekly"),
      every: everyValue.optional(),
      day: dayValue.optional(),
      time: timeOfDay.default("04:00"),
      compression: z.enum(["zstd", "gzip"]).default("zstd"),
      catchUp: z.enum(["once", "skip"]).default("once"),
      keep: keepSchema.optional(),
      hooks: hooksSchema.optional(),
      notify: notifySchema.optional(),
      /** Destinations every backup of the set is also copied to (names under `destinations:`). */
      copies: z.array(z.string().min(1)).default([]),
      /** Restore drills of the set (issue 14): see drillSchema. */
      drill: drillSchema.optional(),
    })
    .superRefine((s, ctx) => {
      // `folder` may also name a destination: checked against `destinations:` in configSchema.
      if (s.folder !== "default" && !s.folder.startsWith("/") && !/^[a-z0-9][a-z0-9_-]*$/.test(s.folder)) {
        ctx.addIssue({
          code: "custom",
          path: ["folder"],
          message: '"default", an absolute path, or the name of a destination under `destinations:`',
        });
      }
      scheduleIssues(s, ctx);
    });

  const webSchema = z
    .strictObject({
      /** false: the daemon serves no window and no API (the control socket stays). */
      enabled: z.boolean().default(true),
      listen: z
        .string()
        .regex(LISTEN, { message: "HOST:PORT, such as 127.0.0.1:8420 or [::1]:8420" })
        .refine((s) => Number(LISTEN.exec(s)?.[2]) <= 65535, { message: "a port from 0 to 65535" })
        .default("127.0.0.1:8420"),
      /** PEM files: with them the window is served over HTTPS (and its cookie is Secure). */
      tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
    })
    .prefault({});

  /** `server.metrics`: who may scrape /metrics (docs/design.md "Metrics and health"). */
  const metricsSchema = z.strictObject({
    /** A bearer token (`secret:NAME`): with it, /metrics answers anyone who sends it; without, loopback only. */
    token: secretValue.optional(),
  });

  /** `server.log`: where `bsched daemon` logs (docs/design.md "Logs"). */
  const logSchema = z
    .strictObject({
      /** A file (relative to the config's folder), rotated by size; absent: stderr (journald under systemd). */
      file: z.string().min(1).optional(),
      level: z.enum(["debug", "info", "warn", "error"]).default("info"),
      format: z.enum(["json", "plain"]).default("json"),
      /** Rotate when the file would grow past this: "10MB", "512KB", or bytes. */
      maxSize: z
        .union([
          z.number().int().min(1000),
          z.string().regex(SIZE, { message: 'a size such as "10MB" or "512KB"' }),
        ])
        .refine((v) => sizeBytes(v) >= 1000, { message: "at least 1KB (1000 bytes)" })
        .default("10MB"),
      /** Rotated files kept beside it (`bsched.log.1` newest … `.N`). */
      keep: z.number().int().min(1).max(100).default(5),
    })
    .prefault({});

  const configSchema = z
    .strictObject({
      server: z.strictObject({
        root: z.string().min(1),
        backupFolder: z.string().min(1).default("Backup"),
        timezone: z
          .string()
          .refine(isTimeZone, { message: "an IANA time zone name such as Europe/Paris or UTC" })
          .optional(),
        state: z.string().min(1).optional(),
        concurrency: z.number().int().min(1).max(16).default(1),
        hooks: hooksSchema.optional(),
        /** The seed's service login (system parameters): SMB destinations with `login: service` use it. */
        serviceLogin: serviceLoginSchema.optional(),
        /** The window and its API, served by `bsched daemon` (docs/design.md "The window and its API"). */
        web: webSchema,
        metrics: metricsSchema.optional(),
        log: logSchema,
        /** Notifications' defaults and server-wide settings (docs/design.md "Notifications"). */
        notify: serverNotifySchema.optional(),
      }),
      destinations: z
        .record(
          z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, {
            message: "a destination name of lowercase letters, digits, - and _",
          }),
          destinationSchema(keepSchema),
        )
        .default({}),
      sets: z
        .record(
          z
            .string()
            .regex(/^[a-z0-9][a-z0-9_-]*$/, { message: "a set id of lowercase letters, digits, - and _" }),
          setSchema,
        )
        .superRefine((sets, ctx) => {
          const seen = new Map<string, string>();
          for (const [id, s] of Object.entries(sets)) {
            const other = seen.get(s.letter);
            if (other !== undefined) {
              ctx.addIssue({
                code: "custom",
                path: [id, "letter"],
                message: `a letter no other set uses (set "${other}" already uses ${s.letter})`,
              });
            }
            seen.set(s.letter, id);
          }
        }),
    })
    .superRefine((c, ctx) => {
      // What links sets to destinations: every name used must be defined, and used sensibly.
      const names = Object.keys(c.destinations);
      const known =
        names.length === 0 ? "none are defined under `destinations:`" : `defined: ${names.join(", ")}`;
      for (const [id, s] of Object.entries(c.sets)) {
        const isName = s.folder !== "default" && !s.folder.startsWith("/");
        if (isName && c.destinations[s.folder] === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["sets", id, "folder"],
            message: `"default", an absolute path, or a destination's name (${known})`,
          });
        }
        const seen = new Set<string>();
        s.copies.forEach((name, i) => {
          if (c.destinations[name] === undefined) {
            ctx.addIssue({
              code: "custom",
              path: ["sets", id, "copies", i],
              message: `a destination's name (${known})`,
            });
          } else if (isName && name === s.folder) {
            ctx.addIssue({
              code: "custom",
              path: ["sets", id, "copies", i],
              message: `a destination other than the set's folder (${name} already holds every backup)`,
            });
          } else if (seen.has(name)) {
            ctx.addIssue({ code: "custom", path: ["sets", id, "copies", i], message: `${name} only once` });
          }
          seen.add(name);
        });
        // A drill restores from the set's own folder (`local`) or a destination of `destinations:`.
        s.drill?.from.forEach((name, i) => {
          if (name === "local" && c.destinations.local !== undefined) {
            ctx.addIssue({
              code: "custom",
              path: ["sets", id, "drill", "from", i],
              message:
                'a name that says one place: "local" is the set\'s own backup folder, and a destination is also named local (rename that destination)',
            });
          } else if (name !== "local" && c.destinations[name] === undefined) {
            ctx.addIssue({
              code: "custom",
              path: ["sets", id, "drill", "from", i],
              message: `"local" (the set's own backup folder) or a destination's name (${known})`,
            });
          } else if (s.drill?.from.indexOf(name) !== i) {
            ctx.addIssue({
              code: "custom",
              path: ["sets", id, "drill", "from", i],
              message: `${name} only once`,
            });
          }
        });
      }
      checkEmail(c, ctx);
      for (const [name, d] of Object.entries(c.destinations)) {
        if (d.type === "smb" && d.login === "service" && c.server.serviceLogin === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["destinations", name, "login"],
            message:
              "login: service needs server.serviceLogin { domain, user, password } (or give this destination a login of its own)",
          });
        }
        if (d.type === "sftp" && d.privateKey === undefined && d.password === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["destinations", name],
            message: "privateKey (a key file) or password (secret:NAME)",
          });
        }
      }
    });
  return { configSchema, setSchema, drillSchema, hooksSchema, emailSchema, serverNotifySchema };
}

/** The config's schemas (built at the first call). */
export const schemas = lazy(build);
type Schemas = ReturnType<typeof schemas>;

/* The config's types are derived from the schemas here, never declared a second time. */
export type RawConfig = z.output<Schemas["configSchema"]>;
export type RawSet = z.output<Schemas["setSchema"]>;
/** `hooks:` of a set or of `server:` (docs/live-databases.md "Hooks"). */
export type HooksConfig = z.output<Schemas["hooksSchema"]>;
/** One entry of `destinations:`, as the schema gives it (secrets still `secret:NAME`). */
export type DestinationConfig = RawConfig["destinations"][string];
export type ServiceLogin = NonNullable<RawConfig["server"]["serviceLogin"]>;
/** `server.notify.email` (or a set's, completed by it): how bsched sends email. */
export type EmailConfig = z.output<Schemas["emailSchema"]>;
export type EmailSecurity = (typeof EMAIL_SECURITY)[number];
/** `server.notify` as the schema gives it. */
export type ServerNotifyConfig = z.output<Schemas["serverNotifySchema"]>;
/**
 * A set's notifications as resolveConfig makes them: its `notify:` over `server.notify` (webhook,
 * email key by key, `on`). `on` defaults to failure, missed, copy_failed, drill_failed and
 * disk_low (DEFAULT_EVENTS in src/notify/webhook.ts).
 */
export interface NotifyConfig {
  webhook?: string | undefined;
  email?: EmailConfig | undefined;
  on?: NotifyEvent[] | undefined;
}
/** A set's `drill:` as the schema gives it (maxSize as written, scratch not yet resolved). */
export type RawDrill = z.output<Schemas["drillSchema"]>;
