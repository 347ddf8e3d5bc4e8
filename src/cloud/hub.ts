/**
 * Hub-side operations (DESIGN A3): the hub stream that sources every device's leaf stream, and
 * the config bucket. All idempotent: running them twice changes nothing the second time.
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

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
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
  const info = await streamInfo(jsm, name);
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

/** Creates the config bucket (history and max value size), or leaves an existing one alone. */
export async function ensureHubConfigBucket(nc: NatsConnection, opts: ConfigBucketOptions = {}): Promise<Change> {
  const bucket = opts.bucket ?? CONFIG_BUCKET;
  const existing = await streamInfo(await jetstreamManager(nc), `KV_${bucket}`);
  await ensureConfigBucket(nc, opts);
  return { result: existing ? "unchanged" : "created", detail: `KV bucket ${bucket}` };
}

/** The stream's subjects without the server's default (its own name). */
function ownSubjects(info: StreamInfo): string[] {
  return (info.config.subjects ?? []).filter((s) => s !== info.config.name);
}

function sourceDevice(s: StreamSource): string | undefined {
  const api = s.external?.api ?? (s.domain ? deviceApiPrefix(s.domain) : undefined);
  const m = api ? /^\$JS\.([^.]+)\.API$/.exec(api) : null;
  return m?.[1];
}

async function hubStream(nc: NatsConnection, stream: string): Promise<{ jsm: JetStreamManager; info: StreamInfo }> {
  const jsm = await jetstreamManager(nc);
  const info = await streamInfo(jsm, stream);
  if (!info) throw new Error(`the hub has no stream ${stream}: run \`edge-gateway cloud init\` first`);
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

/** Adds the device's source ({@link deviceSource}) to the hub stream (idempotent). */
export async function addDevice(nc: NatsConnection, deviceId: string, opts: { stream?: string; leafStream?: string } = {}): Promise<Change> {
  const stream = opts.stream ?? HUB_DEFAULTS.stream;
  const { jsm, info } = await hubStream(nc, stream);
  const sources = info.config.sources ?? [];
  if (sources.some((s) => sourceDevice(s) === deviceId)) return { result: "unchanged", detail: `device ${deviceId} already sourced` };
  const source = deviceSource(deviceId, opts.leafStream);
  // A stream created without subjects and sources gets its own name as subject (server
  // default); with a source it needs none, so drop it here.
  const subjects = ownSubjects(info);
  if ((info.config.subjects ?? []).length > subjects.length) {
    // nats-server 2.9.10 checks a source's filter against the subjects of the *local* stream
    // named like the origin (here: the hub stream itself, whose default subject is its name), so
    // the first filtered source is refused. Add it first with a filter that can match nothing on
    // a leaf (the stream's own name), which drops the default subject; the real filter follows.
    await jsm.streams.update(stream, { ...info.config, subjects, sources: [...sources, { ...source, filter_subject: info.config.name }] });
  }
  await jsm.streams.update(stream, { ...info.config, subjects, sources: [...sources, source] });
  return { result: "added", detail: `device ${deviceId}` };
}

/** Removes the device's source from the hub stream (idempotent). Its stored readings stay. */
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
  /** Messages the hub has not yet copied from the device's leaf stream (as of the last contact). */
  lag: number;
  /** Milliseconds since the hub last heard from the source, or undefined if never. */
  lastActiveMs?: number;
  error?: string;
}

/** The devices sourced by the hub stream, with their lag. */
export async function listDevices(nc: NatsConnection, opts: { stream?: string } = {}): Promise<DeviceSource[]> {
  const { info } = await hubStream(nc, opts.stream ?? HUB_DEFAULTS.stream);
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
        lag: st?.lag ?? 0,
        lastActiveMs: st && st.active >= 0 ? Math.round(st.active / 1e6) : undefined,
        error: st?.error?.description,
      },
    ];
  });
}
