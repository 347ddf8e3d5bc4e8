/**
 * The fleet registry (issue 14): which devices the hub sources, kept as data in the hub.
 * (About 300 lines, one job: the registry and the reconciliation of sources from it.)
 *
 * - KV bucket `gateway-fleet` (replicated like the hub stream): key `devices.<deviceId>` per
 *   registered device, written with compare-and-set (`create`), so concurrent registrations
 *   never overwrite each other; key `layout` = `{stream, shards}`, fixed by `cloud init`.
 * - Shards: with `shards: K > 1` the hub has K streams `<stream>-0 … <stream>-<K-1>`, and a
 *   device belongs to shard `fnv1a(deviceId) mod K` — stable, so no list grows past N/K.
 * - Sources are *reconciled* from the registry: each shard stream's source list is set to
 *   exactly its registered devices, and the reconciler re-reads both until they agree, so a
 *   reconciler that wrote an older view is corrected by the next read (safe under concurrency,
 *   idempotent, one stream update per shard however many devices were added).
 */
import { setLiveDevices } from "./live.js";
import { jetstream, jetstreamManager, type JetStreamManager, type StreamSource } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { GatewayError, errorMessage } from "../errors.js";
import { backoff, delay } from "../util/backoff.js";
import { deviceSource, ensureHubStream, HUB_DEFAULTS, setSources, sourceDevice, streamInfoOrUndefined, type Change, type HubStreamOptions } from "./hub.js";

export const FLEET_BUCKET = "gateway-fleet";
const LAYOUT_KEY = "layout";

export interface FleetLayout {
  /** Base name of the hub stream(s); also the leaf stream's name. */
  stream: string;
  /** Number of hub streams; 1 = the stream is named `stream` itself. */
  shards: number;
}

export interface FleetOptions {
  /** Registry bucket. Default `gateway-fleet`. */
  bucket?: string;
}

/** 32-bit FNV-1a of the UTF-8 bytes: the stable device → shard hash. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The shard of a device: `fnv1a(id) mod shards`. */
export function shardOf(deviceId: string, shards: number): number {
  return shards <= 1 ? 0 : fnv1a(deviceId) % shards;
}

/** The name of hub stream `k`: the base name when unsharded, else `<base>-<k>`. */
export function shardStream(layout: FleetLayout, k: number): string {
  return layout.shards <= 1 ? layout.stream : `${layout.stream}-${k}`;
}

/** Every hub stream of the layout, shard 0 first. */
export function shardStreams(layout: FleetLayout): string[] {
  return Array.from({ length: Math.max(1, layout.shards) }, (_, k) => shardStream(layout, k));
}

/** The hub stream that sources `deviceId`. */
export function streamOf(layout: FleetLayout, deviceId: string): string {
  return shardStream(layout, shardOf(deviceId, layout.shards));
}

function registryKey(deviceId: string): string {
  return `devices.${deviceId}`;
}

async function openRegistry(nc: NatsConnection, opts: FleetOptions): Promise<KV> {
  return retrying("opening the fleet registry", () => openRegistryOnce(nc, opts));
}

async function openRegistryOnce(nc: NatsConnection, opts: FleetOptions): Promise<KV> {
  const bucket = opts.bucket ?? FLEET_BUCKET;
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  if (!(await streamInfoOrUndefined(jsm, `KV_${bucket}`))) {
    throw new GatewayError("EGW_FLEET", `the hub has no fleet registry (KV ${bucket}): run \`edge-gateway cloud init\` first`);
  }
  return new Kvm(jetstream(nc, { timeout: 10_000 })).open(bucket);
}

/** The layout written by `cloud init`; throws EGW_FLEET_MISSING naming the fix if there is none. */
export async function readLayout(nc: NatsConnection, opts: FleetOptions = {}): Promise<FleetLayout> {
  const kv = await openRegistry(nc, opts);
  const e = await retrying("reading the fleet layout", () => kv.get(LAYOUT_KEY));
  if (!e || e.operation !== "PUT") throw new GatewayError("EGW_FLEET", "the fleet registry has no layout: run `edge-gateway cloud init` first");
  return e.json<FleetLayout>();
}

/**
 * The layout if the hub has a registry, else the single stream `fallback` (a hub set up before
 * the registry existed, or by hand). For readers: `devices`, `ingest`.
 */
export async function layoutOrDefault(nc: NatsConnection, fallback: string = HUB_DEFAULTS.stream, opts: FleetOptions = {}): Promise<FleetLayout> {
  try {
    return await readLayout(nc, opts);
  } catch (err) {
    if (err instanceof GatewayError && err.code === "EGW_FLEET") return { stream: fallback, shards: 1 };
    throw err;
  }
}

export interface FleetInitOptions extends FleetOptions, Omit<HubStreamOptions, "stream"> {
  stream?: string;
  /** Hub streams to spread devices over. Default 1. Fixed once set (devices would move). */
  shards?: number;
}

/**
 * Creates (or aligns) the registry bucket, the layout and every shard stream, all with
 * `replicas`. Devices already sourced by the hub stream(s) are imported into the registry, so
 * a hub set up with an older version keeps its sources. Idempotent.
 */
export async function ensureFleet(nc: NatsConnection, opts: FleetInitOptions = {}): Promise<Change[]> {
  const bucket = opts.bucket ?? FLEET_BUCKET;
  const replicas = opts.replicas ?? 1;
  const jsm = await jetstreamManager(nc);
  const changes: Change[] = [];
  const existing = await streamInfoOrUndefined(jsm, `KV_${bucket}`);
  const kv = await new Kvm(nc).create(bucket, {
    history: 1,
    replicas,
    description: "edge-gateway fleet registry: key devices.<deviceId> per registered device, layout = {stream, shards}",
  });
  if (!existing) changes.push({ result: "created", detail: `KV bucket ${bucket}` });
  else if (existing.config.num_replicas !== replicas) {
    await jsm.streams.update(`KV_${bucket}`, { ...existing.config, num_replicas: replicas });
    changes.push({ result: "updated", detail: `KV bucket ${bucket} replicas ${replicas}` });
  } else changes.push({ result: "unchanged", detail: `KV bucket ${bucket}` });

  const want: FleetLayout = { stream: opts.stream ?? HUB_DEFAULTS.stream, shards: opts.shards ?? 1 };
  const current = await kv.get(LAYOUT_KEY);
  let layout = want;
  if (current?.operation === "PUT") {
    layout = current.json<FleetLayout>();
    if (opts.shards !== undefined && layout.shards !== want.shards) {
      throw new GatewayError("EGW_CONFIG_INVALID", `the fleet already has ${layout.shards} shard(s); changing it would move devices between streams: leave --shards out, or set up a new hub stream name with --stream`);
    }
    if (opts.stream !== undefined && layout.stream !== want.stream) {
      throw new GatewayError("EGW_CONFIG_INVALID", `the fleet's hub stream is ${layout.stream}, not ${want.stream}: leave --stream out`);
    }
  } else {
    try {
      await kv.create(LAYOUT_KEY, JSON.stringify(want));
    } catch {
      // Another init won the race: use what it wrote.
      layout = (await kv.get(LAYOUT_KEY))!.json<FleetLayout>();
    }
  }
  for (const name of shardStreams(layout)) {
    changes.push(await ensureHubStream(nc, { ...opts, stream: name }));
    const info = await streamInfoOrUndefined(jsm, name);
    const legacy = (info?.config.sources ?? []).map(sourceDevice).filter((d): d is string => !!d);
    if (legacy.length) await putDevices(kv, legacy);
  }
  return changes;
}

async function putDevices(kv: KV, ids: string[]): Promise<Map<string, "added" | "unchanged">> {
  const out = new Map<string, "added" | "unchanged">();
  const value = JSON.stringify({ registered: new Date().toISOString() });
  await pool(ids, 32, async (id) => {
    const created = await retrying(`registering ${id}`, async () => {
      try {
        await kv.create(registryKey(id), value);
        return true;
      } catch (err) {
        // create() fails only if the key holds a value: registered already (by us, by a
        // concurrent call, or by our own earlier attempt whose answer timed out).
        if (/wrong last sequence|key exists/i.test(errorMessage(err))) return false;
        throw err;
      }
    });
    out.set(id, created ? "added" : "unchanged");
  });
  return out;
}

/** Errors a hub cluster gives while a leader is being elected or a node is down: retried. */
function transient(err: unknown): boolean {
  return /timeout|timed out|no responders|no suitable peers|leader|unavailable|503|insufficient resources/i.test(errorMessage(err));
}

/**
 * Runs `fn`, retrying transient hub errors with backoff for up to `budgetMs`; the last error is
 * rethrown as EGW_FLEET naming `what` (a bare "timeout" says nothing to an operator).
 */
async function retrying<T>(what: string, fn: () => Promise<T>, budgetMs = 30_000): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!transient(err) || Date.now() > deadline) {
        if (err instanceof GatewayError) throw err;
        throw new GatewayError("EGW_FLEET", `${what}: ${errorMessage(err)}`, { cause: err });
      }
      await delay(backoff(attempt, 100, 2000));
    }
  }
}

/** Runs `fn` over `items` with at most `width` in flight. */
async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

/** The registered device ids. */
export async function registeredDevices(nc: NatsConnection, opts: FleetOptions = {}): Promise<string[]> {
  await openRegistry(nc, opts);
  return registryIds(await jetstreamManager(nc, { timeout: 10_000 }), opts.bucket ?? FLEET_BUCKET);
}

/**
 * The registry's keys from one stream info with a subject filter (per-subject counts): no
 * consumer to create, which on an R3 hub under load costs seconds. Unregistering purges the
 * key's subject entirely, so every subject listed is a registered device.
 */
async function registryIds(jsm: JetStreamManager, bucket: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.devices.`;
  const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}>` });
  return Object.keys(info.state.subjects ?? {})
    .map((s) => s.slice(prefix.length))
    .sort();
}

export interface Registration {
  device: string;
  /** `added` (registered now), `unchanged` (was registered), `removed`, `absent` (was not). */
  result: "added" | "unchanged" | "removed" | "absent";
  /** The hub stream that sources it. */
  stream: string;
}

/**
 * Registers devices (compare-and-set per key: safe under concurrent calls, idempotent), then
 * reconciles the sources of the shard streams they belong to. Resolves once every given device
 * is sourced. A credential step (per device) can follow on the returned list.
 */
export async function registerDevices(nc: NatsConnection, ids: readonly string[], opts: FleetOptions = {}): Promise<Registration[]> {
  const kv = await openRegistry(nc, opts);
  const layout = await readLayout(nc, opts);
  const unique = [...new Set(ids)];
  const results = await putDevices(kv, unique);
  await reconcileSources(nc, { ...opts, streams: [...new Set(unique.map((id) => streamOf(layout, id)))] });
  return unique.map((device) => ({ device, result: results.get(device)!, stream: streamOf(layout, device) }));
}

/** Unregisters devices and drops their sources (their stored readings stay). Idempotent. */
export async function unregisterDevices(nc: NatsConnection, ids: readonly string[], opts: FleetOptions = {}): Promise<Registration[]> {
  const kv = await openRegistry(nc, opts);
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  const layout = await readLayout(nc, opts);
  const out: Registration[] = [];
  await pool([...new Set(ids)], 32, async (device) => {
    const e = await kv.get(registryKey(device));
    const was = e?.operation === "PUT";
    // Purge the subject (no delete marker left), so the registry's subject list stays exact.
    if (e) await jsm.streams.purge(`KV_${opts.bucket ?? FLEET_BUCKET}`, { filter: `$KV.${opts.bucket ?? FLEET_BUCKET}.${registryKey(device)}` });
    out.push({ device, result: was ? "removed" : "absent", stream: streamOf(layout, device) });
  });
  await reconcileSources(nc, { ...opts, streams: [...new Set(ids.map((id) => streamOf(layout, id)))] });
  const order = new Map(ids.map((id, i) => [id, i]));
  return out.sort((a, b) => order.get(a.device)! - order.get(b.device)!);
}

export interface ReconcileResult {
  stream: string;
  added: number;
  removed: number;
  sources: number;
}

/**
 * Sets each shard stream's sources to exactly the registered devices of that shard, re-reading
 * registry and stream until they agree (at most `rounds` updates per stream). Idempotent; a
 * concurrent reconciler that wrote an older view is corrected here, and vice versa.
 */
export async function reconcileSources(nc: NatsConnection, opts: FleetOptions & { streams?: string[]; rounds?: number } = {}): Promise<ReconcileResult[]> {
  await openRegistry(nc, opts);
  const layout = await readLayout(nc, opts);
  const jsm = await jetstreamManager(nc, { timeout: 10_000 });
  const streams = opts.streams ?? shardStreams(layout);
  const results = new Map<string, ReconcileResult>(streams.map((s) => [s, { stream: s, added: 0, removed: 0, sources: 0 }]));
  for (let round = 0; round < (opts.rounds ?? 20); round++) {
    const ids = await retrying("reading the fleet registry", () => registryIds(jsm, opts.bucket ?? FLEET_BUCKET));
    let dirty = false;
    for (const stream of streams) {
      const want = ids.filter((id) => streamOf(layout, id) === stream);
      const info = await retrying(`reading stream ${stream}`, () => streamInfoOrUndefined(jsm, stream));
      if (!info) throw new GatewayError("EGW_FLEET", `the hub has no stream ${stream}: run \`edge-gateway cloud init\` first`);
      const have = new Set((info.config.sources ?? []).map(sourceDevice).filter((d): d is string => !!d));
      const wantSet = new Set(want);
      const r = results.get(stream)!;
      r.sources = want.length;
      if (want.length === have.size && want.every((id) => have.has(id))) continue;
      dirty = true;
      r.added += want.filter((id) => !have.has(id)).length;
      r.removed += [...have].filter((id) => !wantSet.has(id)).length;
      // Keep sources that are not devices (added by hand) as they are.
      const foreign = (info.config.sources ?? []).filter((s) => !sourceDevice(s));
      const sources: StreamSource[] = [...foreign, ...want.map((id) => deviceSource(id, layout.stream))];
      // A timed-out update may still have been applied: the next round re-reads and checks.
      await retrying(`updating the sources of stream ${stream}`, () => setSources(jsm, info, sources).catch((err) => (transient(err) ? undefined : Promise.reject(err))));
    }
    // The hub's live interest (LATEST / EVENTS subjects, docs/security.md) follows the registry too.
    if (await retrying("updating the live streams' subjects", () => setLiveDevices(jsm, ids).catch((err) => (transient(err) ? true : Promise.reject(err))))) dirty = true;
    if (!dirty) return [...results.values()];
    // Concurrent reconcilers each rewrite the whole list: a short random pause before checking
    // again lets the others finish theirs, so fewer rounds rewrite a large stream config.
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(1000, 100 * (round + 1))));
  }
  throw new GatewayError("EGW_FLEET", "the hub's sources kept changing while reconciling (many concurrent registrations?): run the command again");
}
