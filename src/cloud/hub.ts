/**
 * Hub-side operations (DESIGN A3): the hub stream(s) that source every device's leaf stream,
 * and the config bucket, each with `replicas`. All idempotent: running them twice changes
 * nothing the second time. Which devices are sourced is kept in the fleet registry (fleet.ts).
 */
import {
  DiscardPolicy,
  JetStreamApiError,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
  type StreamSource,
} from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import { deviceReadingsFilter } from "../bridge/subjects.js";
import { GatewayError } from "../errors.js";
import { CONFIG_BUCKET, ensureConfigBucket, type ConfigBucketOptions } from "../bridge/remote-config-bucket.js";

export const HUB_DEFAULTS = {
  stream: "TELEMETRY",
} as const;

export interface HubStreamOptions {
  stream?: string;
  /** 0 / undefined = unlimited. */
  maxBytes?: number;
  maxAgeMs?: number;
  replicas?: number;
}

export interface Change {
  /** What was done: `created`, `updated`, `unchanged`, `added`, `removed`, `absent`. */
  result: "created" | "updated" | "unchanged" | "added" | "removed" | "absent";
  detail: string;
}

/** The JetStream API prefix through which the hub reaches a device's leaf stream. */
export function deviceApiPrefix(deviceId: string): string {
  return `$JS.${deviceId}.API`;
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.status === 404;
}

/** The stream's info, or undefined if it does not exist. */
export async function streamInfoOrUndefined(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Creates the hub stream (no own subjects; sources added per device), or aligns its limits. */
export async function ensureHubStream(nc: NatsConnection, opts: HubStreamOptions = {}): Promise<Change> {
  const jsm = await jetstreamManager(nc);
  const name = opts.stream ?? HUB_DEFAULTS.stream;
  const limits: Partial<StreamConfig> = {
    max_bytes: opts.maxBytes && opts.maxBytes > 0 ? opts.maxBytes : -1,
    max_age: opts.maxAgeMs ? nanos(opts.maxAgeMs) : 0,
    num_replicas: opts.replicas ?? 1,
  };
  const info = await streamInfoOrUndefined(jsm, name);
  if (!info) {
    await jsm.streams.add({
      name,
      subjects: [],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(120_000),
      ...limits,
    });
    return { result: "created", detail: `stream ${name}` };
  }
  const c = info.config;
  if (c.max_bytes === limits.max_bytes && c.max_age === limits.max_age && c.num_replicas === limits.num_replicas) {
    return { result: "unchanged", detail: `stream ${name}` };
  }
  await jsm.streams.update(name, { ...c, ...limits });
  return { result: "updated", detail: `stream ${name} limits` };
}

/**
 * Creates the config bucket (history, max value size, `replicas`), or aligns an existing one's
 * replicas (a bucket left at R1 on an R3 hub is unreadable while its one node is down).
 */
export async function ensureHubConfigBucket(nc: NatsConnection, opts: ConfigBucketOptions & { replicas?: number } = {}): Promise<Change> {
  const bucket = opts.bucket ?? CONFIG_BUCKET;
  const jsm = await jetstreamManager(nc);
  const existing = await streamInfoOrUndefined(jsm, `KV_${bucket}`);
  const replicas = opts.replicas ?? 1;
  if (!existing) {
    await ensureConfigBucket(nc, { ...opts, replicas });
    return { result: "created", detail: `KV bucket ${bucket}` };
  }
  if (opts.replicas !== undefined && existing.config.num_replicas !== replicas) {
    await jsm.streams.update(existing.config.name, { ...existing.config, num_replicas: replicas });
    return { result: "updated", detail: `KV bucket ${bucket} replicas ${replicas}` };
  }
  return { result: "unchanged", detail: `KV bucket ${bucket}` };
}

/** The stream's subjects without the server's default (its own name). */
function ownSubjects(info: StreamInfo): string[] {
  return (info.config.subjects ?? []).filter((s) => s !== info.config.name);
}

/** The device a hub source copies from (by its `$JS.<id>.API` prefix), if it is a device's. */
export function sourceDevice(s: StreamSource): string | undefined {
  const api = s.external?.api ?? (s.domain ? deviceApiPrefix(s.domain) : undefined);
  const m = api ? /^\$JS\.([^.]+)\.API$/.exec(api) : null;
  return m?.[1];
}

async function hubStream(nc: NatsConnection, stream: string): Promise<{ jsm: JetStreamManager; info: StreamInfo }> {
  const jsm = await jetstreamManager(nc);
  const info = await streamInfoOrUndefined(jsm, stream);
  if (!info) throw new GatewayError("EGW_FLEET", `the hub has no stream ${stream}: run \`edge-gateway cloud init\` first`);
  return { jsm, info };
}

/**
 * The hub stream's source for one device (DESIGN A3): its leaf stream through `$JS.<id>.API`,
 * delivered on `deliver.<id>` (the default `$JS.S.<nuid>` deliver subjects are shared by every
 * leaf) and filtered to `sensors.*.*.<id>.>`, so a device's stream can only ever contribute that
 * device's readings.
 */
export function deviceSource(deviceId: string, leafStream: string = HUB_DEFAULTS.stream): StreamSource {
  return {
    name: leafStream,
    external: { api: deviceApiPrefix(deviceId), deliver: `deliver.${deviceId}` },
    filter_subject: deviceReadingsFilter(deviceId),
  };
}

/**
 * Sets the stream's source list in one update. A stream created without subjects and sources
 * has its own name as subject (server default); with sources it needs none, so it is dropped.
 */
export async function setSources(jsm: JetStreamManager, info: StreamInfo, sources: StreamSource[]): Promise<void> {
  const subjects = ownSubjects(info);
  if (sources.length > 0 && (info.config.subjects ?? []).length > subjects.length) {
    // nats-server 2.9.10 checks a source's filter against the subjects of the *local* stream
    // named like the origin (the hub stream itself when both are TELEMETRY, whose default
    // subject is its name), so the first filtered source is refused. Add it first with a filter
    // that can match nothing on a leaf (the stream's own name), which drops the default
    // subject; the real filters follow.
    await jsm.streams.update(info.config.name, { ...info.config, subjects, sources: [{ ...sources[0]!, filter_subject: info.config.name }] });
  }
  await jsm.streams.update(info.config.name, { ...info.config, subjects, sources });
}

/**
 * Adds the device's source ({@link deviceSource}) to one hub stream (idempotent), bypassing the
 * fleet registry: for a single hub set up by hand or the demo. Fleets use `registerDevices`.
 */
export async function addDevice(nc: NatsConnection, deviceId: string, opts: { stream?: string; leafStream?: string } = {}): Promise<Change> {
  const stream = opts.stream ?? HUB_DEFAULTS.stream;
  const { jsm, info } = await hubStream(nc, stream);
  const sources = info.config.sources ?? [];
  if (sources.some((s) => sourceDevice(s) === deviceId)) return { result: "unchanged", detail: `device ${deviceId} already sourced` };
  await setSources(jsm, info, [...sources, deviceSource(deviceId, opts.leafStream)]);
  return { result: "added", detail: `device ${deviceId}` };
}

/** Removes the device's source from one hub stream (idempotent), bypassing the registry. Its stored readings stay. */
export async function removeDevice(nc: NatsConnection, deviceId: string, opts: { stream?: string } = {}): Promise<Change> {
  const stream = opts.stream ?? HUB_DEFAULTS.stream;
  const { jsm, info } = await hubStream(nc, stream);
  const sources = info.config.sources ?? [];
  const rest = sources.filter((s) => sourceDevice(s) !== deviceId);
  if (rest.length === sources.length) return { result: "absent", detail: `device ${deviceId} was not sourced` };
  await jsm.streams.update(stream, { ...info.config, sources: rest });
  return { result: "removed", detail: `device ${deviceId}` };
}

export interface DeviceSource {
  device: string;
  /** The hub stream that sources it (one of the shards). */
  stream: string;
  /** Messages the hub has not yet copied from the device's leaf stream (as of the last contact). */
  lag: number;
  /** Milliseconds since the hub last heard from the source, or undefined if never. */
  lastActiveMs?: number;
  error?: string;
}

/** The devices sourced by the hub stream(s), with their lag, sorted by device id. */
export async function listDevices(nc: NatsConnection, opts: { stream?: string; streams?: string[] } = {}): Promise<DeviceSource[]> {
  const streams = opts.streams ?? [opts.stream ?? HUB_DEFAULTS.stream];
  const all = await Promise.all(streams.map((s) => listStreamDevices(nc, s)));
  return all.flat().sort((a, b) => a.device.localeCompare(b.device));
}

async function listStreamDevices(nc: NatsConnection, stream: string): Promise<DeviceSource[]> {
  const { info } = await hubStream(nc, stream);
  const byApi = new Map<string, { lag: number; active: number; error?: { description?: string } }>();
  for (const s of info.sources ?? []) {
    const ext = (s as { external?: { api?: string } }).external;
    if (ext?.api) byApi.set(ext.api, s as { lag: number; active: number; error?: { description?: string } });
  }
  return (info.config.sources ?? []).flatMap((s) => {
    const device = sourceDevice(s);
    if (!device) return [];
    const st = byApi.get(deviceApiPrefix(device));
    return [
      {
        device,
        stream,
        lag: st?.lag ?? 0,
        lastActiveMs: st && st.active >= 0 ? Math.round(st.active / 1e6) : undefined,
        error: st?.error?.description,
      },
    ];
  });
}
