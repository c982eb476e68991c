import { z } from "zod";
import { lazy } from "../core/lazy.ts";

/**
 * `destinations:` and `server.serviceLogin` (README "Copies off the machine"). A value that is a
 * secret (a password, a secret key, a key's passphrase) is written `secret:NAME`, stored with
 * `bsched secret set NAME` (src/secrets/); a plain value is accepted with a warning.
 */

/**
 * How a copy is checked. `checksum` (default): each file hashed as it is sent and compared with
 * the manifest, then the server's own check of what it stored where it has one it can be trusted
 * for (Destination.storedDigest, Staging.checkedOnPut), the copy read back where it has none.
 * `read`: every file read back from the server and hashed. `size`: sizes only.
 */
export const VERIFY_COPY = ["checksum", "read", "size"] as const;
export type VerifyCopy = (typeof VERIFY_COPY)[number];

/**
 * Files a copy sends at once where its destination says nothing. One, not rclone's 4, for memory:
 * on a quiet machine (bench/results/2026-12-02-copies-quiet-transfers.md, dataset A on loopback)
 * four at once took 0.86–0.92× the time of one on sftp and smb but peaked at 179–181 MB (sftp)
 * against 160 MB; on a machine at load 20–30 (bench/results/2026-12-04-copies.md) four were
 * 1.1–1.3× slower: there the CPU, not the link, limits a copy. `transfers: 4` is for a link with a
 * long round trip (a window-bound SSH channel) and memory to spare.
 */
export const DEFAULT_TRANSFERS = 1;

/**
 * The schemas, built at their first use, not at import: a command whose config check is cached
 * (src/config/cache.ts) builds none (docs/design.md "Start-up").
 */
function build() {
  /**
   * `secret:NAME` or, discouraged, the value itself. Every key of this schema is secret-valued:
   * masked by `config show`, warned about when plain, refused plain by `config set`
   * (src/config/secret-keys.ts finds them in the schema).
   */
  const secretValue = z.string().min(1);

  /**
   * A login's identifier (an S3 access key id): not a secret (services print it in their logs), so
   * shown and accepted plain; `secret:NAME` works too, for who wants it out of the config.
   */
  const identifierValue = z.string().min(1);

  const name = z.string().min(1);
  const port = z.number().int().min(1).max(65535);
  const verifyCopy = z.enum(VERIFY_COPY).default("checksum");

  const serviceLoginSchema = z.strictObject({
    /** The Windows domain or workgroup (SMB); absent: the server's own. */
    domain: z.string().min(1).optional(),
    user: name,
    password: secretValue,
  });

  /** Fields every destination may carry: its own keep (overriding the set's) and how copies are checked. */
  function common<T extends z.ZodRawShape>(shape: T, keep: z.ZodType) {
    return z.strictObject({
      ...shape,
      keep: keep.optional(),
      verify: verifyCopy,
      /** How often a failing copy there is tried in one run (5 s, then 30 s apart); default 3. */
      attempts: z.number().int().min(1).max(10).optional(),
      /** Files sent at once by a copy there (rclone's `--transfers`); default DEFAULT_TRANSFERS. */
      transfers: z.number().int().min(1).max(16).optional(),
    });
  }

  function destinationSchema(keep: z.ZodType) {
    return z.discriminatedUnion("type", [
      common(
        {
          type: z.literal("local"),
          path: z.string().startsWith("/", { message: "an absolute path (a mounted disk's folder)" }),
        },
        keep,
      ),
      common(
        {
          type: z.literal("sftp"),
          host: name,
          port: port.default(22),
          user: name,
          privateKey: z
            .string()
            .startsWith("/", { message: "the absolute path of a private key file" })
            .optional(),
          passphrase: secretValue.optional(),
          password: secretValue.optional(),
          hostKey: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, {
            message:
              'the server\'s host key fingerprint, "SHA256:…" as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it on the server',
          }),
          path: z.string().min(1),
        },
        keep,
      ),
      common(
        {
          type: z.literal("s3"),
          endpoint: z.url().optional(),
          bucket: name,
          prefix: z.string().default(""),
          region: z.string().min(1).default("us-east-1"),
          accessKeyId: identifierValue,
          secretAccessKey: secretValue,
          /** Path-style addressing (https://host/bucket/key): what self-hosted gateways (Ceph, MinIO) want. */
          pathStyle: z.boolean().default(true),
        },
        keep,
      ),
      common(
        {
          type: z.literal("smb"),
          share: z.string().regex(/^\/\/[^/]+\/[^/]+$/, { message: "//server/share" }),
          port: port.default(445),
          path: z.string().default(""),
          /** "service": server.serviceLogin (the seed's system parameters); or a login of its own. */
          login: z.union([z.literal("service"), serviceLoginSchema]).default("service"),
        },
        keep,
      ),
    ]);
  }

  return { secretValue, identifierValue, serviceLoginSchema, destinationSchema };
}

/** The destinations' schemas (built at the first call). */
export const destinationSchemas = lazy(build);

type Dest = z.output<ReturnType<ReturnType<typeof destinationSchemas>["destinationSchema"]>>;

/** Where a destination is, for messages and the catalog: a path or a URL, never a credential. */
export function whereOf(d: Dest): string {
  const sub = (p: string) => (p === "" ? "" : `/${p.replace(/^\/+/, "")}`);
  switch (d.type) {
    case "local":
      return d.path;
    case "sftp":
      return `sftp://${d.user}@${d.host}${d.port === 22 ? "" : `:${d.port}`}${sub(d.path)}`;
    case "s3":
      return `s3://${d.bucket}${sub(d.prefix)}${d.endpoint === undefined ? "" : ` at ${d.endpoint}`}`;
    case "smb":
      return `${d.share}${sub(d.path)}${d.port === 445 ? "" : ` (port ${d.port})`}`;
  }
}
