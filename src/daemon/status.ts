/**
 * The daemon's status as one JSON document: what the control service's `status` endpoint
 * answers, what `edge-gateway status` prints, and what the metrics and health check read.
 */
import type { PublisherStats, SensorLoss } from "../bridge/publisher.js";
import type { OutputStatus } from "../drivers/gpio/index.js";
import type { DriverCounters, Reading } from "../drivers/types.js";
import { packageVersion } from "../version.js";
import type { LinkState } from "./link-monitor.js";
import type { GatewayView, MqttView } from "./view.js";

export interface SensorStatus {
  id: string;
  driver: string;
  type: string;
  /** `ok`, or `error` with the driver's last error message (and code, when it has one). */
  health: "ok" | "error";
  error?: string;
  code?: string;
  /** Readings handed to the publisher. */
  published: number;
  /** Readings held back by the deadband. */
  suppressed: number;
  counters: DriverCounters;
  lastReading?: Reading;
  /** Readings of this sensor the publisher did not store, by reason (absent when none). */
  lost?: SensorLoss;
}

export interface GatewayStatus {
  device: string;
  region: string;
  version: string;
  /** ms since epoch. */
  startedAt: number;
  uptimeMs: number;
  /** Revision of the applied remote config document; null when none (bootstrap file only). */
  configRevision: number | null;
  /**
   * The uplink as the leaf sees it (`hub`, since when), and whether the hub is copying this
   * device's stream (`sourcing`, see {@link LinkState.sourcing}): `waiting` with `hub: up` is a
   * hub that is not sourcing (JetStream briefly unavailable, a stream leader moving, or the device
   * not registered), not an outage.
   */
  link: { hub: LinkState["hub"]; since: number; sourcing: LinkState["sourcing"]; checkedAt?: number };
  buffer: { messages: number; bytes: number; oldestAgeMs?: number };
  /** Readings of this device the hub stream has not copied yet; null while unknown. */
  hubLag: number | null;
  publisher: PublisherStats & { healthy: boolean; leafConnected: boolean };
  /** Per-sensor state, cut to fit {@link STATUS_MAX_SENSOR_BYTES} (see `sensorsTotal`). */
  sensors: SensorStatus[];
  /** How many sensors run; more than `sensors.length` when the list was cut. */
  sensorsTotal: number;
  outputs: OutputStatus[];
  /** MQTT ingest: broker, client id and counters; null when `mqtt:` is not configured. */
  mqtt: (Omit<MqttView, "counters"> & { connects: number; unmatched: number }) | null;
}

/**
 * Budget for the `sensors` list in one status reply: the reply must fit a NATS message (1 MiB
 * by default), whatever drivers put in their counters and last readings.
 */
export const STATUS_MAX_SENSOR_BYTES = 512 * 1024;

/** The leading sensors whose JSON fits `maxBytes`. */
export function boundSensors(sensors: SensorStatus[], maxBytes = STATUS_MAX_SENSOR_BYTES): SensorStatus[] {
  let bytes = 2;
  for (let i = 0; i < sensors.length; i++) {
    bytes += Buffer.byteLength(JSON.stringify(sensors[i])) + 1;
    if (bytes > maxBytes) return sensors.slice(0, i);
  }
  return sensors;
}

/** The remote-config revision; null when the config is the bootstrap file's. */
export function configRevisionOf(daemon: GatewayView): number | null {
  const rev = daemon.configRevision;
  return typeof rev === "number" ? rev : null;
}

/** A snapshot of the daemon's state. Pure read, never throws. */
export function gatewayStatus(daemon: GatewayView): GatewayStatus {
  const mqtt = daemon.mqttIngest;
  const link = daemon.link;
  const p = daemon.publisher;
  const losses = p.sensorLosses();
  const allSensors = daemon.sensors().flatMap((r) =>
    r.rows().map((s): SensorStatus => {
      const h = s.health;
      const code = h.state === "error" ? (h.error as { code?: string }).code : undefined;
      return {
        id: s.id,
        driver: s.driver,
        type: s.type,
        health: h.state,
        ...(h.state === "error" ? { error: h.error.message, ...(code ? { code } : {}) } : {}),
        published: s.published,
        suppressed: s.suppressed,
        counters: { ...s.counters, rejected: { ...s.counters.rejected } },
        ...(s.lastReading ? { lastReading: s.lastReading } : {}),
        ...(losses.has(s.id) ? { lost: { ...losses.get(s.id)! } } : {}),
      };
    }),
  );
  return {
    device: daemon.config.device.id,
    region: daemon.config.device.region,
    version: packageVersion(),
    startedAt: daemon.startedAt,
    uptimeMs: Date.now() - daemon.startedAt,
    configRevision: configRevisionOf(daemon),
    link: { hub: link.hub, since: link.since, sourcing: link.sourcing, ...(link.checkedAt ? { checkedAt: link.checkedAt } : {}) },
    buffer: { ...link.buffer },
    hubLag: link.hubLag ?? null,
    publisher: { ...p.stats, healthy: p.healthy, leafConnected: p.leafConnected },
    sensors: boundSensors(allSensors),
    sensorsTotal: allSensors.length,
    outputs: daemon.outputs?.list() ?? [],
    mqtt: mqtt ? { url: mqtt.url, clientId: mqtt.clientId, subscriptions: mqtt.subscriptions, connects: mqtt.counters.connects, unmatched: mqtt.counters.unmatched } : null,
  };
}
