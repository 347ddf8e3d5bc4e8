/**
 * MQTT subscriptions run through the same SensorRunner path as every driver: range → quality,
 * deadband with heartbeat, per-sensor status rows, metrics, and `read` with the reading's age —
 * against a real Mosquitto and a real nats-server.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { validateBootstrap } from "../../src/config/index.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { daemonMetrics } from "../../src/daemon/metrics.js";
import { controlHandlers } from "../../src/daemon/operations.js";
import { gatewayStatus } from "../../src/daemon/status.js";
import { silentLogger } from "../../src/logger.js";
import { startMosquitto } from "../helpers/mosquitto.js";
import { cleanupNats, startJetStreamServer } from "../helpers/nats.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";
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

describe("daemon › MQTT as a sensor source", () => {
  it("applies range and deadband, keeps a status row and metrics per sensor id, and `read` answers the last reading with its age", async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.close());
    const server = await startJetStreamServer();
    const v = validateBootstrap({
      device: { id: "pi-q", region: "eu-west" },
      nats: { servers: [server.url] },
      remoteConfig: false,
      http: false,
      state: await tempDir(),
      mqtt: { url: broker.url, subscriptions: [{ topic: "t/+", type: "temperature", id: "m-{1}", unit: "Cel", range: [0, 50], deadband: 1, heartbeat: "1h" }] },
    });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const daemon = await Daemon.start({ config: v.value, logger: silentLogger() });
    cleanups.push(() => daemon.stop());
    await waitFor(() => daemon.mqtt?.counters.connects, { what: "ingest connected" });
    const client = await mqtt.connectAsync(broker.url);
    cleanups.push(() => client.endAsync());
    const row = () => gatewayStatus(daemon).sensors.find((s) => s.id === "m-kitchen");

    // The subscription may not be active at the broker yet: repeat the first value until it arrives.
    await waitFor(async () => {
      await client.publishAsync("t/kitchen", "21.5", { qos: 1 });
      return row()?.published;
    }, { what: "the first reading", timeout: 15_000, interval: 300 });
    const firstSuppressed = row()!.suppressed; // repeats of 21.5 are inside the deadband
    await client.publishAsync("t/kitchen", "21.9", { qos: 1 });
    await waitFor(() => row()!.suppressed > firstSuppressed, { what: "a move inside the deadband held back" });
    await client.publishAsync("t/kitchen", "80", { qos: 1 });
    await waitFor(() => row()!.lastReading?.value === 80, { what: "the out-of-range reading" });

    const status = gatewayStatus(daemon);
    const r = status.sensors.find((s) => s.id === "m-kitchen")!;
    expect(r).toMatchObject({ driver: "mqtt", type: "temperature", health: "ok", published: 2 });
    expect(r.lastReading).toMatchObject({ value: 80, quality: "uncertain" });
    expect(status.mqtt).toMatchObject({ clientId: "edge-gateway-pi-q", subscriptions: [{ topic: "t/+", id: "m-{1}" }] });
    expect(status.mqtt!.connects).toBeGreaterThanOrEqual(1);

    const read = await controlHandlers(daemon, daemon, {}, silentLogger()).read("m-kitchen");
    expect(read).toMatchObject({ sensor: "m-kitchen", fresh: false, reading: { value: 80, quality: "uncertain" } });
    expect((read as { ageMs: number }).ageMs).toBeGreaterThanOrEqual(0);
    await expect(controlHandlers(daemon, daemon, {}, silentLogger()).read("m-nowhere")).rejects.toThrow(/unknown sensor/);

    const metrics = await daemonMetrics(daemon, { processMetrics: false }).metrics();
    expect(metrics).toMatch(/edge_gateway_sensor_published_total\{sensor="m-kitchen",device="pi-q"\} 2/);
    expect(metrics).toMatch(/edge_gateway_sensor_suppressed_total\{sensor="m-kitchen",device="pi-q"\} [1-9]/);
    expect(metrics).toMatch(/edge_gateway_mqtt_messages_total\{topic="t\/\+",device="pi-q"\} [3-9]/);
    expect(metrics).toMatch(/edge_gateway_mqtt_connects_total\{device="pi-q"\} [1-9]/);

    await daemon.stop();
    const nc = await server.connect();
    const stored = (await readStream(nc, "TELEMETRY")).filter((m) => m.subject === "sensors.temperature.eu-west.pi-q.m-kitchen");
    await nc.close();
    expect(stored.map((m) => [m.body.value, m.body.quality])).toEqual([
      [21.5, "good"],
      [80, "uncertain"],
    ]);
  });
});
