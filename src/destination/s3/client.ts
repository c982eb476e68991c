import type { S3Client } from "@aws-sdk/client-s3";
import type { DestinationSpec } from "../../config/load.ts";
import { resolveSecret } from "../../secrets/secrets.ts";

export type S3Sdk = typeof import("@aws-sdk/client-s3");

/** The SDK module and a client, made at first use (the SDK is heavy: commands that never touch S3 never load it). */
export interface S3Conn {
  sdk: S3Sdk;
  client: S3Client;
}

type S3Config = Extract<DestinationSpec["config"], { type: "s3" }>;

/**
 * A client for an `s3` destination: path-style addressing by default (what self-hosted gateways
 * such as Ceph's radosgw and MinIO want), the secret key resolved from the state folder, and
 * checksums only where the API requires them: the SDK's default flexible checksums
 * (x-amz-checksum-* trailers on streamed bodies) are unknown to older gateways (Ceph 16).
 * The SDK reads no AWS_CA_BUNDLE (test/destination-s3.test.ts runs with it set).
 */
export async function makeClient(spec: DestinationSpec, c: S3Config): Promise<S3Conn> {
  const accessKeyId = resolveSecret(c.accessKeyId, spec.state, `destinations.${spec.name}.accessKeyId`);
  const secretAccessKey = resolveSecret(
    c.secretAccessKey,
    spec.state,
    `destinations.${spec.name}.secretAccessKey`,
  );
  const sdk = await import("@aws-sdk/client-s3");
  const client = new sdk.S3Client({
    ...(c.endpoint === undefined ? {} : { endpoint: c.endpoint }),
    region: c.region,
    forcePathStyle: c.pathStyle,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // A gateway that stops answering (not refusing) fails the call instead of hanging the run.
    requestHandler: { connectionTimeout: 15_000, requestTimeout: 120_000 },
    maxAttempts: 3,
  });
  return { sdk, client };
}
