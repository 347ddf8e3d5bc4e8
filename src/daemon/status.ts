/**
 * The daemon's status as one JSON document: what the control service's `status` endpoint
 * answers, what `edge-gateway status` prints, and what the metrics and health check read.
 */
import type { PublisherStats } from "../bridge/publisher.js";
import type { OutputStatus } from "../drivers/gpio/index.js";
import type { DriverCounters, Reading } from "../drivers/types.js";
import { packageVersion } from "../version.js";
import type { Daemon } from "./daemon.js";

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
  link: { hub: "up" | "down" | "unknown"; since: number; checkedAt?: number };
  buffer: { messages: number; bytes: number; oldestAgeMs?: number };
  /** Readings of this device the hub stream has not copied yet; null while unknown. */
  hubLag: number | null;
  publisher: PublisherStats & { healthy: boolean; leafConnected: boolean };
  sensors: SensorStatus[];
  outputs: OutputStatus[];
}

/** The remote-config revision, when the daemon has remote config (optional until it does). */
export function configRevisionOf(daemon: Daemon): number | null {
  const rev = (daemon as unknown as { configRevision?: number | null }).configRevision;
  return typeof rev === "number" ? rev : null;
}

/** A snapshot of the daemon's state. Pure read, never throws. */
export function gatewayStatus(daemon: Daemon): GatewayStatus {
  const link = daemon.link;
  const p = daemon.publisher;
  return {
    device: daemon.config.device.id,
    region: daemon.config.device.region,
    version: packageVersion(),
    startedAt: daemon.startedAt,
    uptimeMs: Date.now() - daemon.startedAt,
    configRevision: configRevisionOf(daemon),
    link: { hub: link.hub, since: link.since, ...(link.checkedAt ? { checkedAt: link.checkedAt } : {}) },
    buffer: { ...link.buffer },
    hubLag: link.hubLag ?? null,
    publisher: { ...p.stats, healthy: p.healthy, leafConnected: p.leafConnected },
    sensors: daemon.sensors().map((r) => {
      const s = r.state;
      const h = s.health;
      return {
        id: s.id,
        driver: s.driver,
        type: r.config.type,
        health: h.state,
        ...(h.state === "error" ? { error: h.error.message, ...((h.error as { code?: string }).code ? { code: (h.error as { code?: string }).code } : {}) } : {}),
        published: s.published,
        suppressed: s.suppressed,
        counters: { ...s.counters, rejected: { ...s.counters.rejected } },
        ...(s.lastReading ? { lastReading: s.lastReading } : {}),
      };
    }),
    outputs: daemon.outputs?.list() ?? [],
  };
}
