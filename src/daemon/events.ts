/**
 * Events on `gateway.<deviceId>.events.<kind>` (DESIGN A1): best-effort core publishes on the
 * leaf connection, and the per-sensor dedupe that turns a driver's repeated error reports into
 * one `failed` and one `recovered` event.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { DriverHealth } from "../drivers/types.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import type { EventKind } from "./view.js";

export class GatewayEvents {
  /** Last driver event per sensor (`failed:<message>` / `recovered`), to send each change once. */
  private readonly driverEvents = new Map<string, string>();
  /** Config documents rejected as invalid (each `config` event with status `rejected`), for /metrics. */
  configRejected = 0;

  constructor(
    private readonly deviceId: string,
    private readonly connection: () => NatsConnection | undefined,
    private readonly logger: Logger,
  ) {}

  /** Publishes a JSON event on `gateway.<deviceId>.events.<kind>`. Best effort: never throws. */
  emit(kind: EventKind, payload: Record<string, unknown>): void {
    if (kind === "config" && payload.status === "rejected") this.configRejected++;
    const nc = this.connection();
    if (!nc || nc.isClosed()) return;
    try {
      nc.publish(`gateway.${this.deviceId}.events.${kind}`, JSON.stringify({ device: this.deviceId, ts: Date.now(), ...payload }));
    } catch (err) {
      this.logger.debug({ err: errorMessage(err), kind }, "event not published");
    }
  }

  /**
   * A driver's health report → a `driver` event, only when the state or the error message
   * changed (drivers report an error on every retry). Never throws.
   */
  readonly driverHealth = (sensor: string, h: DriverHealth): void => {
    const key = h.state === "error" ? `failed:${h.error.message}` : "recovered";
    const last = this.driverEvents.get(sensor);
    if (key === last || (h.state === "ok" && last === undefined)) return;
    this.driverEvents.set(sensor, key);
    this.emit("driver", h.state === "error" ? { sensor, status: "failed", error: h.error.message, code: (h.error as { code?: string }).code } : { sensor, status: "recovered" });
  };
}
