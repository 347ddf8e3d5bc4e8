/**
 * Cloud side of the control service: ask one gateway (`status`, `read`, `output`, `reload`)
 * through the hub, and discover every gateway with `$SRV.PING.edge-gateway`.
 */
import { Empty, NoRespondersError, RequestError, TimeoutError, type NatsConnection } from "@nats-io/nats-core";
import { GatewayError, errorMessage } from "../errors.js";

/** The service name every gateway registers. Kept equal to `SERVICE_NAME` in src/bridge/control-service.ts. */
const SERVICE_NAME = "edge-gateway";

export type ControlEndpoint = "status" | "read" | "output" | "reload";

/** A gateway answered with a service error (bad request, unknown sensor…). */
export class ControlServiceError extends Error {
  readonly status: number;
  /** The error reply's JSON body: `{error, …details}` (e.g. `errors: [{path, message}]`). */
  readonly body?: Record<string, unknown>;
  constructor(status: number, message: string, body?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.name = "ControlServiceError";
    if (body) this.body = body;
  }
}

function isNoResponders(err: unknown): boolean {
  return err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders()) || (err instanceof Error && err.cause instanceof NoRespondersError);
}

/**
 * Requests `gateway.<deviceId>.<endpoint>`. Rejects with EGW_NATS_CONNECT when the device is
 * not connected (no responders) or does not answer in time, with ControlServiceError when it
 * answered with a service error.
 */
export async function requestGateway<T = unknown>(nc: NatsConnection, deviceId: string, endpoint: ControlEndpoint, body: unknown = {}, timeoutMs = 5000): Promise<T> {
  const subject = `gateway.${deviceId}.${endpoint}`;
  let reply;
  try {
    reply = await nc.request(subject, JSON.stringify(body), { timeout: timeoutMs });
  } catch (err) {
    if (isNoResponders(err)) {
      throw new GatewayError("EGW_NATS_CONNECT", `device ${deviceId} is not connected: nothing answers on ${subject} (is its leaf linked to this hub? \`edge-gateway devices\` lists the connected ones)`, { cause: err });
    }
    if (err instanceof TimeoutError || (err instanceof Error && err.cause instanceof TimeoutError)) {
      throw new GatewayError("EGW_NATS_CONNECT", `device ${deviceId} did not answer ${endpoint} within ${timeoutMs} ms`, { cause: err });
    }
    throw new GatewayError("EGW_NATS_CONNECT", `request to ${subject} failed: ${errorMessage(err)}`, { cause: err });
  }
  const code = reply.headers?.get("Nats-Service-Error-Code");
  if (code) {
    let body: Record<string, unknown> | undefined;
    try {
      body = reply.json<Record<string, unknown>>();
    } catch {
      body = undefined;
    }
    const message = typeof body?.error === "string" ? body.error : reply.headers?.get("Nats-Service-Error") || `service error ${code}`;
    throw new ControlServiceError(Number(code), message, body);
  }
  return reply.json<T>();
}

/** One gateway found by discovery. */
export interface DiscoveredGateway {
  device: string;
  region?: string;
  version: string;
  /** Service instance id. */
  id: string;
  started?: string;
  uptimeMs?: number;
}

/**
 * Sends `$SRV.PING.edge-gateway` and collects the answers for `waitMs` (default 1 s).
 * Sorted by device id.
 */
export async function discoverGateways(nc: NatsConnection, waitMs = 1000): Promise<DiscoveredGateway[]> {
  const found: DiscoveredGateway[] = [];
  const replies = await nc.requestMany(`$SRV.PING.${SERVICE_NAME}`, Empty, { strategy: "timer", maxWait: waitMs });
  try {
    for await (const m of replies) {
      let ping: { id?: string; version?: string; metadata?: Record<string, string> };
      try {
        ping = m.json();
      } catch {
        continue;
      }
      const md = ping.metadata ?? {};
      const started = md.started;
      const t = started ? Date.parse(started) : NaN;
      found.push({
        device: md.device ?? "?",
        ...(md.region ? { region: md.region } : {}),
        version: ping.version ?? "?",
        id: ping.id ?? "?",
        ...(started ? { started } : {}),
        ...(Number.isFinite(t) ? { uptimeMs: Math.max(0, Date.now() - t) } : {}),
      });
    }
  } catch (err) {
    // No gateway at all ends the iterator with "no responders": that is an empty list.
    if (!isNoResponders(err)) throw err;
  }
  return found.sort((a, b) => a.device.localeCompare(b.device));
}

/** `1d 2h`, `3h 4m`, `5m 6s`, `7s`. */
export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}
