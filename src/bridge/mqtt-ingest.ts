/**
 * Over 400 lines on purpose, one job (one broker session → readings): one closure owns the
 * client's lifecycle, routing, back-pressure, held acknowledgements and reconnect state; split,
 * that state would have to be shared across modules. What stands alone is elsewhere: payload
 * decoding (mqtt/decode.ts), topic matching (mqtt/topic.ts), the ordered PUBACK queue
 * (mqtt/pubacks.ts), one socket write per turn for the PUBACKs (mqtt/cork.ts).
 *
 * MQTT ingest: subscribes to a site's MQTT broker (Tasmota, zigbee2mqtt, …) and yields the
 * messages as {@link Reading}s, like a driver. Knows nothing about NATS: the daemon publishes
 * what it yields. Behaviour and rules: docs/mqtt.md.
 */
import { connect, ErrorWithReasonCode, type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from "mqtt";
import type { MqttConfig } from "./mqtt/schema.js";
import type { DriverCounters, Reading } from "../drivers/types.js";
import { countRejected, mapAsync, newCounters } from "../drivers/util.js";
import { GatewayError, errorMessage } from "../errors.js";
import { decodeMessage, Payload } from "./mqtt/decode.js";
import { TopicCaptures } from "./mqtt/topic.js";
import { TurnCork } from "./mqtt/cork.js";
import { DeferredPubacks } from "./mqtt/pubacks.js";
import type { MqttIngest, MqttIngestContext, MqttIngestCounters, MqttRejectReason, TaggedReading } from "./mqtt/types.js";

import { redactUrl } from "./mqtt/url.js";

export type { MqttIngest, MqttIngestContext, MqttIngestCounters, MqttRejectReason, TaggedReading } from "./mqtt/types.js";

/** Readings buffered between the broker and the consumer before we stop acknowledging messages. */
const QUEUE_LIMIT = 1000;
/** QoS 1 messages taken in whose PUBACK waits for the leaf (see DeferredPubacks). */
const MAX_HELD_PUBACKS = 1000;
/** How long `close()` waits for a clean MQTT DISCONNECT before dropping the socket. */
const END_GRACE_MS = 2000;

/** One distinct topic filter; several subscriptions may share it (same topic, other paths). */
interface Filter {
  topic: string;
  qos: 0 | 1 | 2;
  /** MQTT 5 subscription identifier (1-based index into the filters). */
  identifier: number;
  /** Indexes into config.subscriptions. */
  subs: number[];
}

/** `mqtt://user:secret@host` → `mqtt://host`, for logs and errors. */
/** MQTT 5 Maximum Packet Size for a payload cap: room for a 64 KiB topic and properties. */
export function maxPacketSize(maxMessageSize: number): number {
  return Math.min(268_435_455, maxMessageSize + 64 * 1024);
}


/**
 * Creates an MQTT ingest for a validated `mqtt:` config.
 *
 * Guarantees:
 * - connects with a persistent session (`clean: false`, client id `config.clientId` or
 *   `edge-gateway-<deviceId>`; MQTT 5 with `sessionExpiry`), so QoS 1 messages published while
 *   the gateway is away are delivered when it comes back;
 * - reconnects on its own (every `reconnectPeriodMs`) and subscribes again whenever the broker
 *   did not keep the session; reports `error` while the broker is unreachable, `ok` once connected;
 * - a message is acknowledged only once its readings are queued; when the consumer falls
 *   `QUEUE_LIMIT` readings behind, the ingest stops reading from the broker instead of dropping;
 * - bad messages are counted per subscription and reason and skipped; nothing here throws on input;
 * - retained messages replayed at subscribe are never forwarded (their age is unknown);
 * - every yielded reading has a valid subject-token `sensor` and `type`.
 */
export function createMqttIngest(config: MqttConfig, ctx: MqttIngestContext): MqttIngest {
  const log = ctx.logger.child({ part: "mqtt-ingest", broker: redactUrl(config.url) });
  const now = ctx.now ?? Date.now;
  const reconnectPeriod = ctx.reconnectPeriodMs ?? 1000;
  const clientId = config.clientId ?? `edge-gateway-${ctx.deviceId}`;
  const subs = config.subscriptions;
  const counters: MqttIngestCounters = {
    subscriptions: ctx.counters ?? subs.map(() => newCounters()),
    unmatched: 0,
    connects: 0,
  };
  const countersOf = (i: number): DriverCounters => (counters.subscriptions[i] ??= newCounters());
  /** Distinct sensor ids seen per subscription, for `maxSensors`. */
  const sensorsSeen = subs.map(() => new Set<string>());

  const filters: Filter[] = [];
  subs.forEach((s, i) => {
    let f = filters.find((x) => x.topic === s.topic);
    if (!f) filters.push((f = { topic: s.topic, qos: s.qos, identifier: filters.length + 1, subs: [] }));
    f.qos = Math.max(f.qos, s.qos) as 0 | 1 | 2;
    f.subs.push(i);
  });

  const topics = new TopicCaptures(filters.map((f) => f.topic));

  let closed = new AbortController();
  /** The current run; `ended` resolves once it is stopped and its client has ended. */
  let current: { ended: Promise<void> } | undefined;
  let health: "ok" | "error" | undefined;

  const report = (state: "ok" | "error", error?: Error) => {
    if (state === health) return;
    health = state;
    try {
      ctx.report(state === "ok" ? { state } : { state, error: error ?? new GatewayError("EGW_MQTT", "MQTT broker unreachable"), retryInMs: reconnectPeriod });
    } catch {
      // report() must not throw; if it does, it is not our failure to handle.
    }
  };

  const logRejected = (i: number, reason: MqttRejectReason, topic: string, payload: Payload) => {
    const n = countersOf(i).rejected[reason] ?? 0;
    // Rate-limited: the 1st, 10th, 100th … occurrence per subscription and reason.
    if (Number.isInteger(Math.log10(n))) {
      log.warn({ subscription: subs[i]?.topic, topic, reason, count: n, payload: payload.bytes.subarray(0, 120).toString("utf8") }, `MQTT message skipped (${reason})`);
    }
  };

  /** Routes one message to its subscriptions; returns the readings with their subscription. Never throws. */
  const route = (packet: IPublishPacket): TaggedReading[] => {
    const receivedAt = now();
    const topic = packet.topic;
    const payload = new Payload(Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
    // With MQTT 5 the broker names the subscription(s) a copy is for; stale identifiers from an
    // older config are harmless because the topic must still match the filter.
    const ids = packet.properties?.subscriptionIdentifier;
    const byFilter = topics.of(topic);
    const out: TaggedReading[] = [];
    let matched = false;
    for (let k = 0; k < filters.length; k++) {
      const f = filters[k]!;
      if (ids !== undefined && (Array.isArray(ids) ? !ids.includes(f.identifier) : ids !== f.identifier)) continue;
      const caps = byFilter[k];
      if (!caps) continue;
      matched = true;
      for (const i of f.subs) {
        const c = countersOf(i);
        c.read++;
        if (packet.retain) {
          countRejected(c, "retained");
          logRejected(i, "retained", topic, payload);
          continue;
        }
        const sub = subs[i];
        if (!sub) continue;
        const d = payload.bytes.length > config.maxMessageSize ? ({ ok: false, reason: "too-long" } as const) : decodeMessage(sub, caps, payload, receivedAt);
        if (!d.ok) {
          countRejected(c, d.reason);
          logRejected(i, d.reason, topic, payload);
          continue;
        }
        const seen = sensorsSeen[i];
        if (seen && !seen.has(d.reading.sensor)) {
          if (seen.size >= sub.maxSensors) {
            countRejected(c, "too-many-sensors");
            logRejected(i, "too-many-sensors", topic, payload);
            continue;
          }
          seen.add(d.reading.sensor);
        }
        if (d.badTime) {
          countRejected(c, "bad-time");
          logRejected(i, "bad-time", topic, payload);
        }
        out.push({ subscription: i, reading: d.reading });
      }
    }
    if (!matched) {
      counters.unmatched++;
      if (Number.isInteger(Math.log10(counters.unmatched))) {
        log.info({ topic, count: counters.unmatched }, "MQTT message matches no subscription (left over in the broker session from an older config?)");
      }
    }
    return out;
  };

  /**
   * One session's readings. `holdAcks`: a QoS 1/2 message is acknowledged once every reading of
   * it settled (see `TaggedReading.settle`); otherwise once its readings are queued here.
   */
  async function* run(signal: AbortSignal, onClient: (end: () => Promise<void>) => void, holdAcks: boolean): AsyncGenerator<TaggedReading> {
    if (signal.aborted) return;
    const queue: TaggedReading[] = [];
    const held: { packet: IPublishPacket; done: () => void }[] = [];
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    let stopping = false;
    let subscribedThisRun = false;
    let lastError: Error | undefined;

    const options: IClientOptions = {
      clientId,
      clean: false,
      protocolVersion: config.protocolVersion,
      reconnectPeriod,
      connectTimeout: 10_000,
      resubscribe: false, // we subscribe ourselves on connect, see below
      ...(config.username !== undefined ? { username: config.username } : {}),
      ...(config.password !== undefined ? { password: config.password } : {}),
      // MQTT 5: the broker must not send packets over this size (it discards them), so one
      // giant message cannot make the gateway buffer it in memory.
      ...(config.protocolVersion === 5 ? { properties: { sessionExpiryInterval: Math.ceil(config.sessionExpiry / 1000), maximumPacketSize: maxPacketSize(config.maxMessageSize) } } : {}),
    };
    let client: MqttClient;
    const cork = new TurnCork();
    try {
      client = connect(config.url, options);
    } catch (cause) {
      // Only option errors throw here (the schema prevents them); network errors come as events.
      throw new GatewayError("EGW_MQTT", `cannot create an MQTT client for ${redactUrl(config.url)}: ${errorMessage(cause)}`, { cause });
    }

    // QoS 1 with holdAcks: MQTT.js reads on at once, the PUBACKs wait (in order) for the leaf.
    // This hooks MQTT.js's internal `_sendPacket` (mqtt 5.x); without it, each message holds
    // MQTT.js until its readings are stored (correct, one message at a time).
    const sendPacket = (client as unknown as { _sendPacket?: (packet: { cmd: string; messageId?: number }, cb?: () => void, ...rest: unknown[]) => void })._sendPacket;
    const pubacks = holdAcks && typeof sendPacket === "function" ? new DeferredPubacks(MAX_HELD_PUBACKS) : undefined;
    /** Counts closed connections: an acknowledgement is only sent on the connection of its message. */
    let connection = 0;
    if (pubacks && sendPacket) {
      const original = sendPacket.bind(client);
      (client as unknown as { _sendPacket: typeof sendPacket })._sendPacket = (packet, cb, ...rest) => {
        if (packet.cmd === "puback" && packet.messageId !== undefined && pubacks.take(packet.messageId, () => (cork.hold(client.stream), original(packet, undefined, ...rest)))) {
          cb?.();
          return;
        }
        original(packet, cb, ...rest);
      };
    }

    const accept = (packet: IPublishPacket, done: () => void) => {
      const readings = route(packet);
      const deferred = pubacks && packet.qos === 1 && packet.messageId !== undefined;
      if (!holdAcks || packet.qos === 0 || (readings.length === 0 && !deferred)) {
        for (const r of readings) queue.push(r);
        done();
        notify();
        return;
      }
      // QoS 1/2: acknowledged to the broker only once every reading of it is stored (issue 18).
      // Held MQTT.js (QoS 2, or no hook): `done` only on the connection the message came on.
      const conn = connection;
      const acknowledge = deferred ? pubacks.expect(packet.messageId!) : (ok: boolean) => void (ok && conn === connection && done());
      let left = readings.length;
      let refused = false;
      for (const r of readings) {
        let settled = false;
        queue.push({
          ...r,
          settle: (ok) => {
            if (settled) return;
            settled = true;
            if (!ok) refused = true;
            if (--left === 0) acknowledge(!refused);
          },
        });
      }
      if (deferred) {
        if (readings.length === 0) acknowledge(true);
        pubacks.proceed(done);
      }
      notify();
    };
    const releaseHeld = () => {
      while (!stopping && queue.length < QUEUE_LIMIT && held.length > 0) {
        const h = held.shift();
        if (h) accept(h.packet, h.done);
      }
    };
    // Overriding handleMessage: MQTT.js sends the PUBACK (and reads the next packet) only when
    // `done` is called, so holding `done` is real back-pressure instead of a dropped reading.
    client.handleMessage = (packet, done) => {
      if (stopping) return; // not acknowledged: the broker redelivers it to the next session
      cork.hold(client.stream);
      if (queue.length >= QUEUE_LIMIT) held.push({ packet, done: () => done() });
      else accept(packet, () => done());
    };

    const subscribeAll = () => {
      let pending = filters.length;
      let failed = false;
      if (pending === 0) {
        subscribedThisRun = true;
        report("ok");
        return;
      }
      for (const f of filters) {
        const opts = config.protocolVersion === 5 ? { qos: f.qos, rh: 2, properties: { subscriptionIdentifier: f.identifier } } : { qos: f.qos };
        client.subscribe(f.topic, opts, (err, granted) => {
          const refused = granted?.find((g) => g.qos === 128 || g.qos > 2);
          if (err || refused) {
            failed = true;
            for (const i of f.subs) countersOf(i).errors++;
            log.error({ topic: f.topic, err: err ? errorMessage(err) : "refused by broker" }, "MQTT subscribe failed; will retry on the next connection");
          }
          if (--pending > 0) return;
          if (failed) {
            report("error", new GatewayError("EGW_MQTT", `MQTT broker ${redactUrl(config.url)} refused a subscription (check its ACL); retrying on reconnect`, err ? { cause: err } : undefined));
          } else {
            subscribedThisRun = true;
            log.info({ filters: filters.length }, "MQTT subscriptions active");
            report("ok");
          }
        });
      }
    };

    client.on("connect", (connack: IConnackPacket) => {
      counters.connects++;
      if (counters.connects > 1) for (const c of counters.subscriptions) c.reopens++;
      log.info({ clientId, sessionPresent: connack.sessionPresent }, "MQTT connected");
      // Subscribe on the first connection of every run (the config may have changed since the
      // broker stored the session) and whenever the broker did not keep the session.
      if (!subscribedThisRun || !connack.sessionPresent) subscribeAll();
      else report("ok");
    });
    client.on("error", (err) => {
      lastError = err;
      log.debug({ err: errorMessage(err) }, "MQTT client error");
    });
    client.on("close", () => {
      // PUBACKs still held belong to this connection: the broker delivers those messages again.
      pubacks?.reset();
      connection++;
      if (stopping) return;
      if (health !== "error") log.warn({ err: lastError ? errorMessage(lastError) : undefined, retryInMs: reconnectPeriod }, "MQTT broker unreachable; reconnecting");
      report(
        "error",
        new GatewayError(
          "EGW_MQTT",
          // A CONNACK refusal (bad login, client id not allowed) carries an MQTT reason code.
          `MQTT broker ${redactUrl(config.url)} ${lastError instanceof ErrorWithReasonCode ? "refused the connection (check username/password and ACL)" : "unreachable"}${lastError ? `: ${errorMessage(lastError)}` : ""}`,
          lastError ? { cause: lastError } : undefined,
        ),
      );
      lastError = undefined;
    });

    let ended: Promise<void> | undefined;
    const end = (): Promise<void> =>
      (ended ??= new Promise<void>((resolve) => {
        stopping = true;
        held.length = 0; // not acknowledged: redelivered by the broker next time
        // A second end() while disconnecting is a no-op in MQTT.js, so force by closing the socket.
        const force = setTimeout(() => {
          client.stream?.destroy();
          resolve();
        }, END_GRACE_MS);
        client.end(false, {}, () => {
          clearTimeout(force);
          resolve();
        });
      }).then(() => {
        client.removeAllListeners();
        client.on("error", () => {}); // late socket errors after end must not crash the process
        health = undefined;
        log.info("MQTT ingest stopped");
      }));
    const onAbort = () => {
      void end();
      notify();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    onClient(end);

    try {
      for (;;) {
        const r = queue.shift();
        if (r) {
          yield r;
          releaseHeld();
          continue;
        }
        // Readings already acknowledged to the broker are yielded even after a stop; only then end.
        if (signal.aborted) break;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      await end();
    }
  }

  /** Starts a session (one at a time). */
  function open(signal: AbortSignal, holdAcks: boolean): AsyncIterable<TaggedReading> {
    if (current) throw new GatewayError("EGW_MQTT", "MQTT ingest already started; close() it before starting again");
    if (closed.signal.aborted) closed = new AbortController();
    const stop = AbortSignal.any([signal, closed.signal]);
    let endClient: (() => Promise<void>) | undefined;
    const me: { ended: Promise<void> } = {
      ended: new Promise<void>((resolve) => {
        const finish = () =>
          void (endClient?.() ?? Promise.resolve()).then(() => {
            if (current === me) current = undefined;
            resolve();
          });
        if (stop.aborted) finish();
        else stop.addEventListener("abort", finish, { once: true });
      }),
    };
    current = me;
    const gen = run(stop, (end) => (endClient = end), holdAcks);
    return { [Symbol.asyncIterator]: () => gen };
  }

  return {
    clientId,
    counters,
    start(signal: AbortSignal): AsyncIterable<Reading> {
      // Plain readings: a message is acknowledged once its readings are queued here. Mapped
      // without a second generator (its microtask hops per reading: issue 13).
      const tagged = open(signal, false);
      return { [Symbol.asyncIterator]: () => mapAsync(tagged[Symbol.asyncIterator](), (t) => t.reading) };
    },
    startTagged(signal: AbortSignal): AsyncIterable<TaggedReading> {
      return open(signal, true);
    },
    async close() {
      closed.abort();
      await current?.ended;
    },
    async [Symbol.asyncDispose]() {
      await this.close();
    },
  };
}
