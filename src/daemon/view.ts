/**
 * What the operations surface (control service, `/metrics`, `status`, health) sees of a running
 * gateway. Types only: this file imports no implementation, so `operations`, `metrics` and
 * `status` depend on this contract and never on the `Daemon` class (no import circle).
 */
import type { PublisherStats, SensorLoss } from "../bridge/publisher.js";
import type { MqttIngestCounters } from "../bridge/mqtt/types.js";
import type { BootstrapConfig, RemoteDocument } from "../config/schema.js";
import type { OutputStatus } from "../drivers/gpio/index.js";
import type { DriverCounters, DriverHealth, Reading } from "../drivers/types.js";
import type { LinkState } from "./link-monitor.js";

/** Where the running config came from (DESIGN A6 boot order: mirror → cache → bootstrap). */
export type ConfigSource = "mirror" | "cache" | "bootstrap";

/** The config the daemon runs. */
export interface AppliedConfig {
  source: ConfigSource;
  /** KV revision of the document; undefined for the bootstrap file. */
  revision?: number;
  /** The validated document (defaults filled in). */
  document: RemoteDocument;
  /** The document as written (JSON), when it came from the KV or the cache. */
  input?: Record<string, unknown>;
}

/** What an applied config changed. */
export interface ConfigChanges {
  started: string[];
  restarted: string[];
  stopped: string[];
  /** True when the GPIO outputs were re-opened / the MQTT ingest restarted. */
  outputs?: boolean;
  mqtt?: boolean;
}

/** Result of the control service's `reload` when remote config is on. */
export interface ReloadResult {
  status: string;
  revision?: number;
  source: ConfigSource;
  errors?: unknown;
}

export type EventKind = "config" | "driver" | "link" | "dropped";

/** One sensor id's state; drivers that fan out (ds18b20 `auto`, MQTT wildcards) have several. */
export interface SensorState {
  id: string;
  driver: string;
  type: string;
  counters: DriverCounters;
  /** Readings passed on to the publisher. */
  published: number;
  /** Readings held back by the deadband. */
  suppressed: number;
  lastReading?: Reading;
  health: DriverHealth;
}

/** A running sensor (one config entry) as the operations surface sees it. */
export interface SensorView {
  /** The config entry's id. */
  readonly id: string;
  readonly state: SensorState;
  /** One row per sensor id this entry produced (at least the entry itself). */
  rows(): SensorState[];
  /** A fresh sample where the driver can poll; undefined otherwise. */
  poll(): Promise<Reading[] | undefined>;
  /** The last reading of `sensorId` (an id this entry produced), if any. */
  lastReadingOf(sensorId: string): Reading | undefined;
}

/** MQTT ingest state for `status` and `/metrics` (undefined when `mqtt:` is not configured). */
export interface MqttView {
  url: string;
  clientId: string;
  counters: MqttIngestCounters;
  subscriptions: { topic: string; id: string }[];
}

export interface PublisherView {
  readonly stats: PublisherStats;
  readonly healthy: boolean;
  readonly leafConnected: boolean;
  /** Per sensor, readings not stored and why (only sensors with a loss). */
  sensorLosses(): ReadonlyMap<string, Readonly<SensorLoss>>;
}

export interface OutputsView {
  list(): OutputStatus[];
  set(id: string, value: boolean): Promise<unknown>;
}

/** A read-only view of a running gateway. */
export interface GatewayView {
  readonly config: BootstrapConfig;
  /** ms since epoch. */
  readonly startedAt: number;
  readonly publisher: PublisherView;
  /** Uplink and buffer state, refreshed every few seconds. */
  readonly link: LinkState;
  /** KV revision of the running config; undefined when it is the bootstrap file's. */
  readonly configRevision: number | undefined;
  readonly configSource: ConfigSource;
  /** Config documents rejected as invalid since the start. */
  readonly configRejected: number;
  sensors(): SensorView[];
  readonly outputs: OutputsView | undefined;
  readonly mqttIngest: MqttView | undefined;
}

/** What the control service may do to a running gateway, beyond reading it. */
export interface GatewayControl {
  /** Re-applies the leaf mirror's document; undefined when remote config is off. */
  reload(): Promise<ReloadResult | undefined>;
  applyConfig(applied: AppliedConfig): Promise<ConfigChanges>;
  emitEvent(kind: EventKind, payload: Record<string, unknown>): void;
  /** Calls `fn` with the leaf connection once it is made (at once if it already is). */
  onConnected(fn: (nc: import("@nats-io/nats-core").NatsConnection) => void): void;
}
