/**
 * The MQTT ingest contract. Types only: this file imports no implementation.
 *
 * The ingest is a source of {@link Reading}s like a driver: the daemon starts it, iterates what it
 * yields and publishes that. It knows nothing about NATS.
 */
import type { Logger } from "pino";
import type { Driver, DriverCounters, DriverHealth, Reading } from "../../drivers/types.js";

/**
 * Why a message was skipped, the keys of a subscription's `counters.rejected`:
 * - `empty`: zero-length payload (e.g. a retained message being cleared);
 * - `too-long`: payload over 256 KiB;
 * - `not-json`: `valuePath`/`values` set but the payload is not JSON;
 * - `missing-path`: the path (or, for `values`, every path) is absent or `null`;
 * - `not-numeric`: the value found is not a number (see docs/mqtt.md for what counts);
 * - `invalid-id`: the id rendered from the topic is not a subject token (i.e. empty);
 * - `too-many-sensors`: the subscription already produced `maxSensors` distinct ids (since start);
 * - `retained`: a retained message replayed at subscribe (MQTT 3.1.1; MQTT 5 brokers are asked
 *   not to send them);
 * - `bad-time` is the exception: counted here, but the reading is still forwarded, with the
 *   receive time and quality `uncertain`.
 */
export type MqttRejectReason =
  | "empty"
  | "too-long"
  | "not-json"
  | "missing-path"
  | "not-numeric"
  | "invalid-id"
  | "too-many-sensors"
  | "retained"
  | "bad-time";

/** A reading and the subscription (index into `config.subscriptions`) it came from. */
export interface TaggedReading {
  subscription: number;
  reading: Reading;
  /**
   * Present for readings of a QoS 1/2 message: call it once, when the reading's fate is known —
   * `true` when it was stored (or will never be: filtered out, dropped and counted), `false`
   * when it was not and may still be (the gateway is stopping). The message is acknowledged to
   * the broker once every reading of it settled `true`; with one `false` it never is, and the
   * broker delivers it again in the next session. Until then MQTT.js reads no further message:
   * that is the back-pressure.
   */
  settle?: (acknowledge: boolean) => void;
}

/** Counters of one ingest instance; the status endpoint and metrics expose them. */
export interface MqttIngestCounters {
  /**
   * One entry per configured subscription, index-aligned with `config.subscriptions`.
   * `read` counts messages routed to the subscription, `rejected` skipped ones by
   * {@link MqttRejectReason}, `errors` failed (re)subscribe attempts, `reopens` reconnects.
   */
  subscriptions: DriverCounters[];
  /** Messages no current subscription matches (e.g. a subscription of an older config still held in the broker's session). */
  unmatched: number;
  /** Successful connections to the broker (the first and every reconnect). */
  connects: number;
}

/** What the daemon gives the ingest. */
export interface MqttIngestContext {
  logger: Logger;
  /** Used for the default client id `edge-gateway-<deviceId>`. */
  deviceId: string;
  /** Report broker unreachable (`error`) / connected (`ok`). Never throws. */
  report(health: DriverHealth): void;
  /** Per-subscription counters to update (index-aligned); fresh ones are made if omitted. */
  counters?: DriverCounters[];
  /** Clock for the receive time (tests). */
  now?: () => number;
  /** Delay between reconnect attempts (default 1000 ms). */
  reconnectPeriodMs?: number;
}

/**
 * A running MQTT ingest: a {@link Driver} (start → readings, close safe twice) with its counters.
 * At most one `start()` runs at a time; after `close()` a new `start()` connects again with the
 * same client id and resumes the broker session.
 */
export interface MqttIngest extends Driver {
  /**
   * Like `start`, with the index (in `config.subscriptions`) of the subscription each reading
   * came from: the daemon runs every subscription as a sensor entry of its own. Unlike `start`,
   * a QoS 1/2 message is acknowledged only once each of its readings was `settle`d.
   */
  startTagged(signal: AbortSignal): AsyncIterable<TaggedReading>;
  readonly counters: MqttIngestCounters;
  /** Client id used with the broker. */
  readonly clientId: string;
}
