import { z } from "zod";
import { schemas } from "../../config/schema.ts";
import { BACKUP_MODES } from "../../core/types.ts";
import { holdsNoSecret } from "../../ops/settings.ts";

/*
 * The shapes of the settings routes (docs/design.md "Settings and system parameters"). A set's
 * settings are described by the config's own set schema; what the window sends is checked by
 * the config's schema and checks as a whole file (src/ops/settings.ts), so the bodies here only
 * say "a set's keys" and the messages are the CLI's, each with its field's path.
 */

/** A set's keys as GET /api/settings gives them: the config's set schema, `day` the one in effect. */
export const setSettingsSchema = z
  .object({
    ...schemas().setSchema.shape,
    day: z.union([z.string(), z.number()]).optional(),
    // Its email's password is sent as a secret's mask (src/ops/settings.ts maskSetEmail), never a value.
    notify: z.looseObject({}).optional(),
  })
  .describe("a set's keys as under sets.<id> in bsched.yaml, defaults filled in");

/** What the window sends for a set or a destination: checked by the config's schema, not here. */
const keysAsInTheConfig = (what: string) =>
  z
    .record(z.string(), z.unknown())
    .describe(`${what}, as GET /api/settings gives it; checked by the config's schema`);

export const setInputSchema = keysAsInTheConfig("a set's keys");
export const destinationInputSchema = keysAsInTheConfig(
  "a destination's keys (a secret: a new value, or the mask object as received: unchanged)",
);

export const secretMaskSchema = z
  .object({ secret: z.string().nullable(), set: z.boolean() })
  .describe("a secret: the name it is stored under (null: a plain value in the file), and whether it is set");

/** A destination's entry, each secret masked. Checked on the way out: a secret field holding a string is never sent. */
export const destinationViewSchema = z
  .looseObject({ type: z.enum(["local", "sftp", "s3", "smb"]) })
  .refine(holdsNoSecret, { message: "a secret field would be sent: refused" });

export const settingsSchema = z.object({
  hash: z.string().describe("sha256 of bsched.yaml's text: send it back with a change"),
  file: z.string(),
  sets: z.record(z.string(), setSettingsSchema),
  system: z.object({
    serviceLogin: z
      .object({ domain: z.string().nullable(), user: z.string(), passwordSet: z.boolean() })
      .nullable(),
    timezone: z.string().nullable().describe("server.timezone as in the file (null: the machine's)"),
    timezoneInEffect: z.string(),
    concurrency: z.number(),
    destinations: z.record(z.string(), destinationViewSchema),
  }),
});

export const savedSchema = z.object({
  hash: z.string().describe("the file's new sha256"),
  changed: z.boolean(),
  warnings: z.array(z.string()),
});

export const hashSchema = z.string().regex(/^[0-9a-f]{64}$/, { message: "the hash GET /api/settings gave" });

export const nextBodySchema = z.object({
  set: z.string().min(1),
  settings: setInputSchema,
  from: z.iso.datetime({ offset: true }).optional().describe("count from this instant (default: now)"),
  count: z.number().int().min(1).max(20).default(3),
});

export const nextAnswerSchema = z.object({
  timezone: z.string(),
  chain: z.number().describe("the set's current chain length (the full cadence counts from it)"),
  runs: z.array(
    z.object({
      at: z.string().describe("an ISO-8601 instant, as `bsched next --json`"),
      local: z.string().describe("in server.timezone, as `bsched next` prints it"),
      mode: z.enum(BACKUP_MODES),
    }),
  ),
});

export const systemBodySchema = z.object({
  hash: hashSchema,
  serviceLogin: z
    .object({
      domain: z.string().nullable().optional(),
      user: z.string(),
      password: z.string().optional().describe("a new password (absent or empty: the stored one stays)"),
    })
    .nullable()
    .optional()
    .describe("null: no service login"),
  timezone: z.string().nullable().optional().describe("an IANA name; null: the machine's"),
  concurrency: z.number().optional(),
});

export const destinationTestBodySchema = z
  .object({
    name: z.string().min(1).optional(),
    destination: destinationInputSchema.optional(),
  })
  .refine((b) => b.name !== undefined || b.destination !== undefined, {
    message: "name (a saved destination) or destination (an unsaved one)",
  });

export const destinationTestSchema = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), where: z.string(), backups: z.number() }),
  z.object({
    ok: z.literal(false),
    where: z.string(),
    error: z.object({ code: z.string(), message: z.string(), hint: z.string().nullable() }),
  }),
]);
