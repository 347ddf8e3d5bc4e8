import { afterAll, afterEach, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import type { Daemon } from "../../src/daemon/daemon.js";
import { startDaemon } from "../edge/helpers.js";
import { startMosquitto, type Mosquitto } from "../helpers/mosquitto.js";
import { cleanupNats, startJetStreamServer } from "../helpers/nats.js";
import { cleanupTempDirs } from "../helpers/procs.js";
import { readStream } from "../helpers/stream.js";
import { waitFor } from "../helpers/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await cleanupNats();
  await cleanupTempDirs();
});

describe("daemon › MQTT ingest", () => {
  it("publishes Tasmota readings from a real broker to sensors.<type>.<region>.<id> and applies an mqtt change live", async () => {
    const broker: Mosquitto = await startMosquitto();
    cleanups.push(() => broker.close());
    const server = await startJetStreamServer();
    const daemon: Daemon = await startDaemon(server, "pi-m", {
      extra: {
        sensors: [],
        mqtt: { url: broker.url, subscriptions: [{ topic: "tele/+/SENSOR", type: "temperature", id: "tasmota-{1}", valuePath: "DS18B20.Temperature", unit: "Cel" }] },
      },
    });
    cleanups.push(() => daemon.stop());
    const client = await mqtt.connectAsync(broker.url);
    cleanups.push(() => client.endAsync());
    await waitFor(() => daemon.mqtt?.counters.connects, { what: "ingest connected" });
    await waitFor(async () => {
      await client.publishAsync("tele/boiler/SENSOR", JSON.stringify({ Time: "2026-11-30T10:00:00", DS18B20: { Temperature: 61.5 } }), { qos: 1 });
      return daemon.publisher.stats.published >= 1;
    }, { what: "an MQTT reading stored", timeout: 15_000, interval: 500 });

    // Change the subscription live: the new type/id apply without restarting the daemon.
    await daemon.applyMqtt({ ...daemon.config.mqtt!, subscriptions: [{ topic: "tele/+/SENSOR", type: "water-temp", id: "t-{1}", valuePath: "DS18B20.Temperature", unit: "Cel", qos: 1, maxSensors: 1000 }] });
    await waitFor(async () => {
      await client.publishAsync("tele/boiler/SENSOR", JSON.stringify({ DS18B20: { Temperature: 62 } }), { qos: 1 });
      const nc = await server.connect();
      const stored = await readStream(nc, "TELEMETRY");
      await nc.close();
      return stored.some((r) => r.subject === "sensors.water-temp.eu-west.pi-m.t-boiler");
    }, { what: "reading under the new subscription", timeout: 15_000, interval: 500 });

    await daemon.stop();
    const nc = await server.connect();
    const stored = await readStream(nc, "TELEMETRY");
    await nc.close();
    const first = stored.find((r) => r.subject === "sensors.temperature.eu-west.pi-m.tasmota-boiler");
    expect(first?.body).toMatchObject({ device: "pi-m", sensor: "tasmota-boiler", type: "temperature", value: 61.5, unit: "Cel", quality: "good" });
    expect(first?.msgId).toBe(`pi-m.tasmota-boiler.${first?.body.seq}`);
  });
});

describe("daemon › MQTT back-pressure (issue 18)", () => {
  it("a QoS 1 message is acknowledged to the broker only after the leaf stored its reading: stopped while the leaf is down, nothing is lost", async () => {
    const broker: Mosquitto = await startMosquitto();
    cleanups.push(() => broker.close());
    const server = await startJetStreamServer();
    const mqttConfig = { url: broker.url, subscriptions: [{ topic: "tele/+/SENSOR", type: "temperature", id: "t-{1}", valuePath: "DS18B20.Temperature", unit: "Cel" }] };
    const extra = { sensors: [], shutdownTimeout: "2s", mqtt: mqttConfig };
    const first: Daemon = await startDaemon(server, "pi-q", { extra });
    cleanups.push(() => first.stop());
    const client = await mqtt.connectAsync(broker.url);
    cleanups.push(() => client.endAsync());
    await waitFor(() => first.mqtt?.counters.connects, { what: "ingest connected" });
    // One reading stored: the path works and the sensor's seq floor is known.
    await waitFor(async () => {
      await client.publishAsync("tele/boiler/SENSOR", JSON.stringify({ DS18B20: { Temperature: 50 } }), { qos: 1 });
      return first.publisher.stats.published >= 1;
    }, { what: "a first MQTT reading stored", timeout: 15_000, interval: 500 });

    // The leaf dies: readings wait in the daemon's memory.
    await server.kill9();
    for (const t of [51, 52, 53]) await client.publishAsync("tele/boiler/SENSOR", JSON.stringify({ DS18B20: { Temperature: t } }), { qos: 1 });
    await waitFor(() => first.publisher.stats.queued > 0, { what: "a reading held while the leaf is down" });
    // Stopped while the leaf is down: the held reading cannot be stored, so its message is not acknowledged.
    await first.stop();
    expect(first.flushedCleanly).toBe(false);
    await server.restart();

    // The next start (same client id, same broker session) gets the unacknowledged messages again.
    const second: Daemon = await startDaemon(server, "pi-q", { extra });
    cleanups.push(() => second.stop());
    const nc = await server.connect();
    cleanups.push(() => nc.close());
    const values = async () => new Set((await readStream(nc, "TELEMETRY")).map((r) => r.body.value));
    await waitFor(async () => {
      const s = await values();
      return [50, 51, 52, 53].every((v) => s.has(v));
    }, { what: "every message's reading stored", timeout: 30_000, interval: 250 });
    expect([...(await values())].sort()).toEqual([50, 51, 52, 53]);
  });
});
