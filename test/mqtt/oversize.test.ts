/**
 * Hostile MQTT input (issue 18): payloads over `mqtt.maxMessageSize` are skipped and counted,
 * and with MQTT 5 the broker is told the largest packet the gateway takes, so a giant message
 * never reaches it. Real Mosquitto, MQTT.js as the device.
 */
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMqttIngest, maxPacketSize } from "../../src/bridge/mqtt-ingest.js";
import { mqttSchema } from "../../src/config/schema.js";
import type { Reading } from "../../src/drivers/types.js";
import { silentLogger } from "../../src/logger.js";
import { startMosquitto, type Mosquitto } from "../helpers/mosquitto.js";
import { cleanupTempDirs } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

let broker: Mosquitto;
let publisher: MqttClient;

beforeAll(async () => {
  broker = await startMosquitto();
  publisher = await connectAsync(broker.url, { clientId: "oversize-publisher", reconnectPeriod: 200 });
});

afterAll(async () => {
  await publisher?.endAsync(true);
  await broker?.close();
  await cleanupTempDirs();
});

describe("mqtt ingest › hostile input", () => {
  it("skips and counts payloads over maxMessageSize; the broker withholds packets over the announced maximum; readings go on", async () => {
    const cfg = mqttSchema.parse({
      url: broker.url,
      clientId: "gw-oversize",
      maxMessageSize: "1KiB",
      subscriptions: [{ topic: "big/+", type: "temperature", id: "big-{1}" }],
    });
    expect(cfg.maxMessageSize).toBe(1024);
    const health: string[] = [];
    const ingest = createMqttIngest(cfg, { logger: silentLogger(), deviceId: "pi-test", report: (h) => health.push(h.state), reconnectPeriodMs: 200 });
    const abort = new AbortController();
    const readings: Reading[] = [];
    const done = (async () => {
      for await (const r of ingest.start(abort.signal)) readings.push(r);
    })();
    try {
      await waitFor(() => health.at(-1) === "ok", { timeout: 20_000, what: "ingest subscribed" });
      const counters = () => ingest.counters.subscriptions[0]!;
      // Just over the payload cap (but under the packet limit): delivered, skipped, counted.
      await publisher.publishAsync("big/a", `${"1".repeat(1025)}`, { qos: 1 });
      await waitFor(() => counters().rejected["too-long"] === 1, { timeout: 20_000, what: "the oversize payload counted as too-long" });
      // Far over the announced Maximum Packet Size: the broker discards it for this client.
      await publisher.publishAsync("big/b", "2".repeat(maxPacketSize(1024) + 10), { qos: 1 });
      await publisher.publishAsync("big/c", "21.5", { qos: 1 });
      await waitFor(() => readings.some((r) => r.sensor === "big-c"), { timeout: 20_000, what: "the next normal reading" });
      expect(readings.map((r) => [r.sensor, r.value])).toEqual([["big-c", 21.5]]);
      // The giant one never reached the gateway: read counts only what arrived.
      expect(counters().read).toBe(2);
      expect(counters().rejected).toEqual({ "too-long": 1 });
    } finally {
      await ingest.close();
      abort.abort();
      await done;
    }
  });
});
