/**
 * Cloud wildcards under fleet auth (issue 17 item 5, docs/security.md).
 *
 * A hub only forwards a subscriber's interest to a leaf when the leaf's user may publish it;
 * nats-server 2.9.10 drops wildcard interest wider than the device's own `sensors.*.*.<id>.>`
 * (`sensors.>`, `sensors.*.eu-west.>`, `gateway.*.events.>`), so without help such
 * subscribers on the hub see nothing live. The hub therefore holds one *exact per-device*
 * interest itself: two small streams whose subjects name each device —
 * `LATEST` (`sensors.*.*.<id>.>`, one message per subject: the latest reading of every sensor)
 * and `EVENTS` (`gateway.<id>.events.>`, the fleet's events, 30 days). Their subscriptions pull
 * each device's live traffic across its link once; on the hub every client subscription
 * matching it — any wildcard — gets it once. (The hub stream's `republish` cannot do this on
 * 2.9.10: its source must overlap the stream's own subjects and its destination must not,
 * and `TELEMETRY` has none.)
 */
import { DiscardPolicy, JetStreamApiError, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import { deviceReadingsFilter } from "../bridge/subjects.js";
import type { Change } from "./hub.js";

export const LIVE_STREAMS = {
  latest: "LATEST",
  events: "EVENTS",
} as const;

/** How long the hub keeps device events. */
const EVENTS_MAX_AGE_MS = 30 * 24 * 3600 * 1000;

/** The events subject of one device (DESIGN A1). */
export function deviceEventsSubjects(deviceId: string): string {
  return `gateway.${deviceId}.events.>`;
}

/**
 * Placeholder subject of a stream with no device yet: a stream needs one, and this one is in
 * neither the readings' nor the events' namespace shape, so it never matches real traffic.
 */
const PLACEHOLDER = (stream: string) => `_egw.${stream.toLowerCase()}.none`;

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.status === 404;
}

async function info(jsm: JetStreamManager, name: string) {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Creates the `LATEST` and `EVENTS` streams if absent (idempotent). */
export async function ensureLiveStreams(nc: NatsConnection, opts: { replicas?: number } = {}): Promise<Change[]> {
  const jsm = await jetstreamManager(nc);
  const specs: Partial<StreamConfig>[] = [
    {
      name: LIVE_STREAMS.latest,
      description: "edge-gateway: the latest reading of every sensor; its per-device subjects carry live readings to hub subscribers",
      // File, not memory: a single hub forgets memory streams, config included, on restart.
      storage: StorageType.File,
      max_msgs_per_subject: 1,
      discard: DiscardPolicy.Old,
    },
    {
      name: LIVE_STREAMS.events,
      description: "edge-gateway: device events (config applied/rejected, driver, link), 30 days",
      storage: StorageType.File,
      max_age: nanos(EVENTS_MAX_AGE_MS),
      discard: DiscardPolicy.Old,
    },
  ];
  const changes: Change[] = [];
  for (const spec of specs) {
    const name = spec.name!;
    if (await info(jsm, name)) {
      changes.push({ result: "unchanged", detail: `stream ${name}` });
      continue;
    }
    await jsm.streams.add({ ...spec, name, subjects: [PLACEHOLDER(name)], retention: RetentionPolicy.Limits, num_replicas: opts.replicas ?? 1 });
    changes.push({ result: "created", detail: `stream ${name}` });
  }
  return changes;
}

async function setDeviceSubjects(nc: NatsConnection, deviceId: string, add: boolean): Promise<Change> {
  const jsm = await jetstreamManager(nc);
  let changed = false;
  for (const [name, subject] of [
    [LIVE_STREAMS.latest, deviceReadingsFilter(deviceId)],
    [LIVE_STREAMS.events, deviceEventsSubjects(deviceId)],
  ] as const) {
    const i = await info(jsm, name);
    if (!i) throw new Error(`the hub has no stream ${name}: run \`edge-gateway cloud init\` first`);
    const subjects = (i.config.subjects ?? []).filter((s) => s !== PLACEHOLDER(name));
    const has = subjects.includes(subject);
    if (has === add) continue;
    const next = add ? [...subjects, subject] : subjects.filter((s) => s !== subject);
    await jsm.streams.update(name, { ...i.config, subjects: next.length ? next : [PLACEHOLDER(name)] });
    changed = true;
  }
  return add
    ? { result: changed ? "added" : "unchanged", detail: `live interest in device ${deviceId} (streams ${LIVE_STREAMS.latest}, ${LIVE_STREAMS.events})` }
    : { result: changed ? "removed" : "absent", detail: `live interest in device ${deviceId}` };
}

/** One live stream whose subjects differ from the registry's, and the update that fixes it. */
export interface LiveUpdate {
  stream: string;
  apply(): Promise<unknown>;
}

/**
 * What it takes to set `LATEST` and `EVENTS` to exactly the given devices' subjects (the fleet
 * registry's): one update per stream that differs, none when both match; a stream that does not
 * exist (a hub set up before fleet auth: run `cloud init`) is left alone. Each update writes the
 * whole list, so the caller re-reads the registry and plans again until nothing is left
 * (fleet.ts). The updates touch different streams and may run in parallel; they go through
 * `jsmUpdates` (give it a long timeout: at 1,000 subjects one update takes seconds on 2.9.10).
 */
export async function liveDevicesPlan(jsm: JetStreamManager, deviceIds: readonly string[], jsmUpdates: JetStreamManager = jsm): Promise<LiveUpdate[]> {
  const out: LiveUpdate[] = [];
  for (const [name, subjectOf] of [
    [LIVE_STREAMS.latest, deviceReadingsFilter],
    [LIVE_STREAMS.events, deviceEventsSubjects],
  ] as const) {
    const i = await info(jsm, name);
    if (!i) continue;
    const want = [...new Set(deviceIds.map(subjectOf))].sort();
    const have = (i.config.subjects ?? []).filter((s) => s !== PLACEHOLDER(name)).sort();
    if (want.length === have.length && want.every((s, k) => s === have[k])) continue;
    out.push({ stream: name, apply: () => jsmUpdates.streams.update(name, { ...i.config, subjects: want.length ? want : [PLACEHOLDER(name)] }) });
  }
  return out;
}

/** Adds the device's subjects to `LATEST` and `EVENTS` (idempotent): its live traffic reaches every hub subscriber. */
export function addDeviceLive(nc: NatsConnection, deviceId: string): Promise<Change> {
  return setDeviceSubjects(nc, deviceId, true);
}

/** Removes them (idempotent). */
export function removeDeviceLive(nc: NatsConnection, deviceId: string): Promise<Change> {
  return setDeviceSubjects(nc, deviceId, false);
}
