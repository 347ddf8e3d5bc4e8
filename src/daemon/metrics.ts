/**
 * Prometheus metrics of one daemon, in a registry of its own (never prom-client's global one,
 * so several daemons in one process, as in tests, don't mix). Every value is read from the
 * daemon's state at scrape time; nothing is counted twice.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import { packageVersion } from "../version.js";
import type { GatewayView } from "./view.js";
import { configRevisionOf } from "./status.js";

const PREFIX = "edge_gateway_";

/** Counter whose value is a monotonic number the daemon already keeps: set at each scrape. */
function mirroredCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[], read: () => [Partial<Record<L, string>>, number][]): void {
  new Counter<L>({
    name: PREFIX + name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.inc(labels as Record<L, string>, Math.max(0, v));
    },
  });
}

function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: L[], read: () => [Partial<Record<L, string>>, number][]): void {
  new Gauge<L>({
    name: PREFIX + name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      const values = read();
      // A label-less gauge resets to 0; "unknown" must be no sample at all, not 0.
      if (values.length === 0 && labelNames.length === 0) this.remove({} as Record<L, string>);
      for (const [labels, v] of values) this.set(labels as Record<L, string>, v);
    },
  });
}

/** Builds the daemon's registry (metric names in docs/operations.md). */
export function daemonMetrics(daemon: GatewayView, opts: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  const device = daemon.config.device.id;
  registry.setDefaultLabels({ device });
  const sensors = () => daemon.sensors().flatMap((r) => r.rows());
  const one = (v: number): [Record<string, string>, number][] => [[{}, v]];

  gauge(registry, "info", "Always 1; the version in a label.", ["version"], () => [[{ version: packageVersion() }, 1]]);
  gauge(registry, "uptime_seconds", "Seconds since the daemon started.", [], () => one((Date.now() - daemon.startedAt) / 1000));
  mirroredCounter(registry, "sensor_readings_total", "Readings a driver produced (before range/deadband).", ["sensor"], () => sensors().map((s) => [{ sensor: s.id }, s.counters.read]));
  mirroredCounter(registry, "sensor_published_total", "Readings of a sensor handed to the publisher.", ["sensor"], () => sensors().map((s) => [{ sensor: s.id }, s.published]));
  mirroredCounter(registry, "sensor_suppressed_total", "Readings of a sensor held back by its deadband.", ["sensor"], () => sensors().map((s) => [{ sensor: s.id }, s.suppressed]));
  mirroredCounter(registry, "sensor_rejected_total", "Bad input a driver counted and skipped, by reason (checksum, parse, …).", ["sensor", "reason"], () =>
    sensors().flatMap((s) => Object.entries(s.counters.rejected).map(([reason, n]): [Record<string, string>, number] => [{ sensor: s.id, reason }, n])),
  );
  mirroredCounter(registry, "driver_errors_total", "Driver errors (open failures, I/O errors, crashes).", ["sensor"], () => sensors().map((s) => [{ sensor: s.id }, s.counters.errors]));
  mirroredCounter(registry, "driver_reopens_total", "Times a driver reopened its device.", ["sensor"], () => sensors().map((s) => [{ sensor: s.id }, s.counters.reopens]));
  gauge(registry, "driver_up", "1 when the sensor's driver is healthy, 0 while it reports an error.", ["sensor"], () => sensors().map((s) => [{ sensor: s.id }, s.health.state === "ok" ? 1 : 0]));

  const mqttSubs = () => {
    const m = daemon.mqttIngest;
    return m ? m.subscriptions.map((s, i) => ({ topic: s.topic, c: m.counters.subscriptions[i] })) : [];
  };
  mirroredCounter(registry, "mqtt_messages_total", "MQTT messages routed to a subscription.", ["topic"], () => mqttSubs().map((s) => [{ topic: s.topic }, s.c?.read ?? 0]));
  mirroredCounter(registry, "mqtt_rejected_total", "MQTT messages a subscription skipped, by reason (not-json, missing-path, …).", ["topic", "reason"], () =>
    mqttSubs().flatMap((s) => Object.entries(s.c?.rejected ?? {}).map(([reason, n]): [Record<string, string>, number] => [{ topic: s.topic, reason }, n])),
  );
  mirroredCounter(registry, "mqtt_unmatched_total", "MQTT messages no subscription matches.", [], () => {
    const m = daemon.mqttIngest;
    return m ? one(m.counters.unmatched) : [];
  });
  mirroredCounter(registry, "mqtt_connects_total", "Connections to the MQTT broker (the first and every reconnect).", [], () => {
    const m = daemon.mqttIngest;
    return m ? one(m.counters.connects) : [];
  });

  const pub = () => daemon.publisher.stats;
  mirroredCounter(registry, "publisher_accepted_total", "Readings accepted by the publisher.", [], () => one(pub().accepted));
  mirroredCounter(registry, "publisher_published_total", "Readings acknowledged by the leaf stream (PubAck).", [], () => one(pub().published));
  mirroredCounter(registry, "publisher_duplicates_total", "PubAcks saying the stream already had the reading (a retried publish).", [], () => one(pub().duplicates));
  mirroredCounter(registry, "publisher_dropped_total", "Oldest readings dropped because the publish queue was full.", [], () => one(pub().dropped));
  mirroredCounter(registry, "publisher_rejected_total", "Readings the leaf stream refused outright (e.g. too large): not stored, not retried.", [], () => one(pub().rejected));
  mirroredCounter(registry, "publisher_rate_limited_total", "Readings over a sensor's rate cap (`buffer.maxRatePerSensor`): dropped and counted.", [], () => one(pub().rateLimited));
  mirroredCounter(registry, "publisher_collisions_total", "Msg ids found already used on a reading's first attempt (resent under a fresh seq); should stay 0.", [], () => one(pub().collisions));
  mirroredCounter(registry, "publisher_sensor_lost_total", "Per sensor, readings not stored and why (dropped, rateLimited, rejected; collisions were resent). Only sensors with a loss.", ["sensor", "reason"], () => {
    const out: [Partial<Record<"sensor" | "reason", string>>, number][] = [];
    for (const [sensor, l] of daemon.publisher.sensorLosses()) {
      for (const reason of ["dropped", "rateLimited", "rejected", "collisions"] as const) if (l[reason] > 0) out.push([{ sensor, reason }, l[reason]]);
    }
    return out;
  });
  mirroredCounter(registry, "publisher_retries_total", "Publish attempts that failed and were retried.", [], () => one(pub().retries));
  gauge(registry, "publisher_queue_depth", "Readings waiting to be published (not in flight).", [], () => one(pub().queued));
  gauge(registry, "publisher_in_flight", "Publishes awaiting their PubAck.", [], () => one(pub().inFlight));
  gauge(registry, "publisher_healthy", "1 when connected to the local leaf with the stream ready.", [], () => one(daemon.publisher.healthy ? 1 : 0));

  gauge(registry, "leaf_stream_messages", "Messages in the leaf buffer stream.", [], () => one(daemon.link.buffer.messages));
  gauge(registry, "leaf_stream_bytes", "Bytes in the leaf buffer stream.", [], () => one(daemon.link.buffer.bytes));
  gauge(registry, "leaf_stream_oldest_age_seconds", "Age of the oldest reading in the leaf stream.", [], () => {
    const age = daemon.link.buffer.oldestAgeMs;
    return age === undefined ? [] : one(age / 1000);
  });
  gauge(registry, "leaf_oldest_unsent_age_seconds", "Age of the oldest reading the hub has not copied yet (0 = all copied; absent until the hub's source was seen).", [], () => {
    const age = daemon.link.oldestUnsentAgeMs;
    return age === undefined ? [] : one(age / 1000);
  });
  gauge(registry, "hub_source_lag", "Readings of this device the hub stream has not copied yet (absent while unknown).", [], () => {
    const lag = daemon.link.hubLag;
    return lag === undefined ? [] : one(lag);
  });
  gauge(registry, "link_up", "1 when the hub's JetStream answers through the leaf link, else 0.", [], () => one(daemon.link.hub === "up" ? 1 : 0));
  gauge(registry, "config_revision", "Revision of the applied remote config document (absent when none).", [], () => {
    const rev = configRevisionOf(daemon);
    return rev === null ? [] : one(rev);
  });
  mirroredCounter(registry, "config_rejected_total", "Config documents (remote revisions or a reloaded bootstrap file) rejected as invalid.", [], () => one(daemon.configRejected));
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}
