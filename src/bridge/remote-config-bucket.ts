/**
 * The hub's config bucket (DESIGN A3): KV `gateway-config`, key `devices.<deviceId>` = that
 * device's remote config document (A6). Shared by `cloud init` (creates it) and `config push`.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { StreamSource } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";

/** Default bucket name (A3). */
export const CONFIG_BUCKET = "gateway-config";
/** Revisions kept per device by default: enough for `config history` and a rollback. */
export const CONFIG_HISTORY = 10;
/** Largest document the bucket accepts by default (1 MiB; also the default NATS max_payload). */
export const CONFIG_MAX_VALUE_SIZE = 1024 * 1024;

/** The KV key of a device's document. */
export function deviceKey(deviceId: string): string {
  return `devices.${deviceId}`;
}

/**
 * The leaf's mirror of the hub bucket, holding only the device's key (DESIGN A3, Part C): through
 * the hub's JetStream API, delivered on the device's own `deliver.<id>.cfg` (the default
 * `$JS.M.<nuid>` deliver subjects are shared by every leaf), filtered to `devices.<id>`.
 */
export function leafMirrorSource(deviceId: string, bucket: string = CONFIG_BUCKET, hubDomain = "hub"): StreamSource {
  return {
    name: bucket,
    external: { api: `$JS.${hubDomain}.API`, deliver: `deliver.${deviceId}.cfg` },
    filter_subject: `$KV.${bucket}.${deviceKey(deviceId)}`,
  };
}

export interface ConfigBucketOptions {
  bucket?: string;
  history?: number;
  /** Largest value in bytes; the server refuses bigger puts. */
  maxValueSize?: number;
  /** Copies on a hub cluster (1 to 5); applies when the bucket is created. Default 1. */
  replicas?: number;
}

/**
 * Creates the hub config bucket if it does not exist and returns it; an existing bucket is
 * bound as it is (its settings are not changed). Idempotent. Run against the hub, not a leaf.
 */
export async function ensureConfigBucket(nc: NatsConnection, opts: ConfigBucketOptions = {}): Promise<KV> {
  return new Kvm(nc).create(opts.bucket ?? CONFIG_BUCKET, {
    history: opts.history ?? CONFIG_HISTORY,
    maxValueSize: opts.maxValueSize ?? CONFIG_MAX_VALUE_SIZE,
    replicas: opts.replicas ?? 1,
    description: "edge-gateway remote config: key devices.<deviceId> = config document (JSON)",
  });
}
