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
