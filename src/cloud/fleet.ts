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
import { hostname } from "node:os";
import { liveDevicesPlan } from "./live.js";
import { markReconciled, ReconcileLease, reconciledThrough, requestReconcile } from "./fleet-lease.js";
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
  return (await registryIds(await jetstreamManager(nc, { timeout: 10_000 }), opts.bucket ?? FLEET_BUCKET)).ids;
}

/**
 * The registry's keys from one stream info with a subject filter (per-subject counts): no
 * consumer to create, which on an R3 hub under load costs seconds. Unregistering purges the
 * key's subject entirely, so every subject listed is a registered device. `seq` is the registry
 * stream's last sequence read *before* the keys (its own request, so whatever order a server
 * fills one answer in): the ids include every change up to `seq`.
 */
async function registryIds(jsm: JetStreamManager, bucket: string): Promise<{ ids: string[]; seq: number }> {
  const seq = (await jsm.streams.info(`KV_${bucket}`)).state.last_seq;
  const prefix = `$KV.${bucket}.devices.`;
  const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}>` });
  const ids = Object.keys(info.state.subjects ?? {})
    .map((s) => s.slice(prefix.length))
    .sort();
  return { ids, seq };
}

/** What a registry operation needs, opened once per call. */
interface Fleet {
  kv: KV;
  /** For reads: 10 s (a stream without a leader does not answer; the read is retried). */
  jsm: JetStreamManager;
  /** For stream updates: one with 1,000 sources or subjects takes seconds on 2.9.10. */
  jsmUpdates: JetStreamManager;
  layout: FleetLayout;
  bucket: string;
}

async function openFleet(nc: NatsConnection, opts: FleetOptions): Promise<Fleet> {
  const kv = await openRegistry(nc, opts);
  const e = await retrying("reading the fleet layout", () => kv.get(LAYOUT_KEY));
  if (!e || e.operation !== "PUT") throw new GatewayError("EGW_FLEET", "the fleet registry has no layout: run `edge-gateway cloud init` first");
  return {
    kv,
    jsm: await jetstreamManager(nc, { timeout: 10_000 }),
    jsmUpdates: await jetstreamManager(nc, { timeout: 60_000 }),
    layout: e.json<FleetLayout>(),
    bucket: opts.bucket ?? FLEET_BUCKET,
  };
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
 * reconciles the sources of the shard streams and the live streams' subjects. Resolves once a
 * reconcile pass that saw every given device has completed. A credential step (per device)
 * can follow on the returned list.
 */
export async function registerDevices(nc: NatsConnection, ids: readonly string[], opts: FleetOptions & ReconcileOptions = {}): Promise<Registration[]> {
  const fleet = await openFleet(nc, opts);
  const unique = [...new Set(ids)];
  const results = await putDevices(fleet.kv, unique);
  await reconcile(fleet, opts);
  return unique.map((device) => ({ device, result: results.get(device)!, stream: streamOf(fleet.layout, device) }));
}

/** Unregisters devices and drops their sources (their stored readings stay). Idempotent. */
export async function unregisterDevices(nc: NatsConnection, ids: readonly string[], opts: FleetOptions & ReconcileOptions = {}): Promise<Registration[]> {
  const fleet = await openFleet(nc, opts);
  const out: Registration[] = [];
  await pool([...new Set(ids)], 32, async (device) => {
    const e = await retrying(`reading ${device}`, () => fleet.kv.get(registryKey(device)));
    const was = e?.operation === "PUT";
    // Purge the subject (no delete marker left), so the registry's subject list stays exact.
    if (e) await retrying(`unregistering ${device}`, () => fleet.jsm.streams.purge(`KV_${fleet.bucket}`, { filter: `$KV.${fleet.bucket}.${registryKey(device)}` }));
    out.push({ device, result: was ? "removed" : "absent", stream: streamOf(fleet.layout, device) });
  });
  await reconcile(fleet, opts);
  const order = new Map(ids.map((id, i) => [id, i]));
  return out.sort((a, b) => order.get(a.device)! - order.get(b.device)!);
}

export interface ReconcileResult {
  stream: string;
  /** Sources this call added / removed (0 when a concurrent call's pass did the work). */
  added: number;
  removed: number;
  sources: number;
}

export interface ReconcileOptions {
  /** Rounds (write, re-read) one pass may take before it gives up. Default 20. */
  rounds?: number;
  /** How long to wait for a pass that covers this call, holding the lease or not. Default 10 min. */
  timeoutMs?: number;
}

/**
 * Sets each shard stream's sources, and the live streams' subjects, to exactly the registered
 * devices. Idempotent and safe under concurrent calls: one call at a time holds the reconcile
 * lease (fleet-lease.ts) and runs a pass — read the registry, write what differs, re-read until
 * registry and streams agree — and a call whose changes a completed pass already saw returns
 * without writing. So eight concurrent `add-device` calls rewrite the (large) stream configs a
 * few times, not eight times or more.
 */
export async function reconcileSources(nc: NatsConnection, opts: FleetOptions & ReconcileOptions = {}): Promise<ReconcileResult[]> {
  return reconcile(await openFleet(nc, opts), opts);
}

async function reconcile(fleet: Fleet, opts: ReconcileOptions): Promise<ReconcileResult[]> {
  // Every change this call made is in the registry at or before `target`.
  const target = await retrying("marking the fleet registry changed", () => requestReconcile(fleet.kv));
  const lease = new ReconcileLease(fleet.kv, `${hostname()}/${process.pid}/${Math.random().toString(36).slice(2, 10)}`);
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  for (;;) {
    if ((await retrying("reading the fleet's reconcile state", () => reconciledThrough(fleet.kv))) >= target) return sourceCounts(fleet);
    if (await retrying("taking the reconcile lease", () => lease.tryAcquire())) {
      try {
        const pass = await reconcilePass(fleet, lease, opts.rounds ?? 20);
        if (pass) {
          await retrying("recording the reconcile pass", () => markReconciled(fleet.kv, pass.seq));
          return pass.results;
        }
        // Lease lost mid-pass (we stalled past its staleness): the new holder's pass covers us.
      } finally {
        await lease.release();
      }
    }
    if (Date.now() > deadline) {
      throw new GatewayError("EGW_FLEET", `no reconcile pass covered this call within ${Math.round((opts.timeoutMs ?? 600_000) / 1000)} s (another call holds the lease?): run \`edge-gateway cloud reconcile\``);
    }
    await delay(250 + Math.random() * 250);
  }
}

/** Per stream, how many registered devices it sources (for a call whose pass someone else ran). */
async function sourceCounts(fleet: Fleet): Promise<ReconcileResult[]> {
  const { ids } = await retrying("reading the fleet registry", () => registryIds(fleet.jsm, fleet.bucket));
  return shardStreams(fleet.layout).map((stream) => ({ stream, added: 0, removed: 0, sources: ids.filter((id) => streamOf(fleet.layout, id) === stream).length }));
}

/**
 * One pass under the lease: until registry and streams agree, read the registry, then write
 * every stream that differs (the shard streams and the live streams at once: they are
 * different streams, so the hub works on them in parallel). Resolves with the registry sequence
 * the agreement was checked at, or undefined if the lease was lost before a write.
 */
async function reconcilePass(fleet: Fleet, lease: ReconcileLease, rounds: number): Promise<{ seq: number; results: ReconcileResult[] } | undefined> {
  const { jsm, jsmUpdates, layout } = fleet;
  const streams = shardStreams(layout);
  const results = new Map<string, ReconcileResult>(streams.map((s) => [s, { stream: s, added: 0, removed: 0, sources: 0 }]));
  for (let round = 0; round < rounds; round++) {
    const { ids, seq } = await retrying("reading the fleet registry", () => registryIds(jsm, fleet.bucket));
    const writes: (() => Promise<unknown>)[] = [];
    for (const stream of streams) {
      const want = ids.filter((id) => streamOf(layout, id) === stream);
      const info = await retrying(`reading stream ${stream}`, () => streamInfoOrUndefined(jsm, stream));
      if (!info) throw new GatewayError("EGW_FLEET", `the hub has no stream ${stream}: run \`edge-gateway cloud init\` first`);
      const have = new Set((info.config.sources ?? []).map(sourceDevice).filter((d): d is string => !!d));
      const wantSet = new Set(want);
      const r = results.get(stream)!;
      r.sources = want.length;
      if (want.length === have.size && want.every((id) => have.has(id))) continue;
      r.added += want.filter((id) => !have.has(id)).length;
      r.removed += [...have].filter((id) => !wantSet.has(id)).length;
      // Keep sources that are not devices (added by hand) as they are.
      const foreign = (info.config.sources ?? []).filter((s) => !sourceDevice(s));
      const sources: StreamSource[] = [...foreign, ...want.map((id) => deviceSource(id, layout.stream))];
      // A timed-out update may still have been applied: the next round re-reads and checks.
      writes.push(() => retrying(`updating the sources of stream ${stream}`, () => setSources(jsmUpdates, info, sources).catch((err) => (transient(err) ? undefined : Promise.reject(err)))));
    }
    // The hub's live interest (LATEST / EVENTS subjects, docs/security.md) follows the registry too.
    const live = await retrying("reading the live streams", () => liveDevicesPlan(jsm, ids, jsmUpdates));
    writes.push(...live.map((w) => () => retrying(`updating the subjects of stream ${w.stream}`, () => w.apply().catch((err) => (transient(err) ? undefined : Promise.reject(err))))));
    if (writes.length === 0) return { seq, results: [...results.values()] };
    if (!(await retrying("checking the reconcile lease", () => lease.confirm()))) return undefined;
    await Promise.all(writes.map((w) => w()));
  }
  throw new GatewayError("EGW_FLEET", "the hub's sources kept changing while reconciling (many concurrent registrations?): run the command again");
}
