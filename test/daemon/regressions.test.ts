/**
 * Regression tests for failure modes found in review: each names the scenario it guards.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import mqtt from "mqtt";
import { pino } from "pino";
import { validateBootstrap, type BootstrapInput } from "../../src/config/index.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { SensorRunner } from "../../src/daemon/sensor-runner.js";
import { createSimulated } from "../../src/drivers/simulated.js";
import { newCounters } from "../../src/drivers/util.js";
import { silentLogger } from "../../src/logger.js";
import { FakeGpio } from "../helpers/fake-gpio.js";
import { startMosquitto } from "../helpers/mosquitto.js";
import { cleanupNats, startJetStreamServer, type NatsServer } from "../helpers/nats.js";
import { cleanupTempDirs, tempDir } from "../helpers/procs.js";
import { checkSequences, readStream } from "../helpers/stream.js";
import { waitFor } from "../helpers/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await cleanupNats();
  await cleanupTempDirs();
});

function cfg(server: NatsServer, state: string, extra: Partial<BootstrapInput>) {
  const v = validateBootstrap({ device: { id: "pi-r", region: "eu-west" }, nats: { servers: [server.url] }, remoteConfig: false, http: false, state, sensors: [], ...extra });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.value;
}

describe("regressions", () => {
  it("a sensor whose type changed while its seq file lagged behind does not reuse a msg id", async () => {
    const server = await startJetStreamServer();
    const state = await tempDir();
    const sensor = { id: "s1", driver: "simulated" as const, interval: "20ms" };
    const first = await Daemon.start({ config: cfg(server, state, { sensors: [{ ...sensor, type: "temperature" }] }), logger: silentLogger() });
    await waitFor(() => first.publisher.stats.published >= 10, { what: "first run publishing" });
    await first.stop();
    // As if a crash lost the last writes of the seq file.
    await writeFile(join(state, "seq.json"), JSON.stringify({ s1: 1 }));
    const second = await Daemon.start({ config: cfg(server, state, { sensors: [{ ...sensor, type: "humidity" }] }), logger: silentLogger() });
    cleanups.push(() => second.stop());
    await waitFor(() => second.publisher.stats.published >= 10, { what: "second run publishing" });
    await second.stop();
    expect(second.publisher.stats.duplicates).toBe(0);
    const nc = await server.connect();
    const stored = await readStream(nc, "TELEMETRY");
    await nc.close();
    expect(new Set(stored.map((r) => r.subject))).toEqual(new Set(["sensors.temperature.eu-west.pi-r.s1", "sensors.humidity.eu-west.pi-r.s1"]));
    expect(checkSequences(stored).problems).toEqual([]);
    expect(stored.length).toBe(first.publisher.stats.accepted + second.publisher.stats.accepted);
    // A clean stop writes the exact next seq.
    expect(JSON.parse(await readFile(join(state, "seq.json"), "utf8")).next.s1).toBe(stored.length + 1);
  });

  it("re-opening the GPIO outputs on a config change leaves the MQTT ingest running", async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.close());
    const server = await startJetStreamServer();
    const gpio = new FakeGpio();
    const config = cfg(server, await tempDir(), {
      outputs: [{ id: "relay", pin: 5 }],
      mqtt: { url: broker.url, subscriptions: [{ topic: "t/+", type: "temperature", id: "m-{1}" }] },
    });
    const daemon = await Daemon.start({ config, logger: silentLogger(), hardware: { gpio } });
    cleanups.push(() => daemon.stop());
    const doc = { sensors: [], outputs: [{ id: "relay", pin: 6, initial: false, activeLow: false }], mqtt: config.mqtt, log: config.log };
    const changes = await daemon.applyConfig({ source: "bootstrap", document: doc });
    expect(changes.outputs).toBe(true);
    expect(changes.mqtt).toBe(false);
    const client = await mqtt.connectAsync(broker.url);
    cleanups.push(() => client.endAsync());
    await waitFor(async () => {
      await client.publishAsync("t/kitchen", "21.5", { qos: 1 });
      return daemon.publisher.stats.accepted >= 1;
    }, { what: "MQTT readings still forwarded", timeout: 15_000, interval: 500 });
  });

  it("a leaf stream that does not capture sensors.> is a clear error, not a hot retry loop", async () => {
    const server = await startJetStreamServer();
    const nc = await server.connect();
    cleanups.push(() => nc.close());
    await (await jetstreamManager(nc)).streams.add({ name: "TELEMETRY", subjects: ["other.>"] });
    const logs: string[] = [];
    const capture = pino({ level: "warn" }, { write: (line: string) => void logs.push(line) });
    const daemon = await Daemon.start({
      config: cfg(server, await tempDir(), { sensors: [{ id: "a", type: "t", driver: "simulated", interval: "10ms" }] }),
      logger: capture,
      flushTimeoutMs: 200,
    });
    cleanups.push(() => daemon.stop());
    await waitFor(() => logs.some((l) => l.includes("does not capture sensors.>")), { what: "the error naming the stream's subjects" });
    await waitFor(() => daemon.publisher.stats.accepted >= 50, { what: "readings queued meanwhile" });
    expect(daemon.publisher.stats.published).toBe(0);
    expect(daemon.publisher.stats.retries).toBe(0);
    expect(logs.filter((l) => l.includes("does not capture")).length).toBeLessThan(5);
  });

  it("a sensor runner started on an already-aborted signal (config applied during shutdown) does not run", async () => {
    const aborted = AbortSignal.abort();
    const emitted: unknown[] = [];
    const sensor = validateBootstrap({ device: { id: "d", region: "r" }, sensors: [{ id: "a", type: "t", driver: "simulated", interval: "10ms" }] });
    if (!sensor.ok) throw new Error("invalid");
    const s = sensor.value.sensors[0]!;
    const runner = new SensorRunner({
      sensor: s,
      logger: silentLogger(),
      emit: (r) => void emitted.push(r),
      create: (counters, report) => createSimulated(s as never, { logger: silentLogger(), stateDir: "/nonexistent", counters: counters ?? newCounters(), report, hardware: {} }),
    });
    runner.start(aborted);
    await runner.stop();
    expect(emitted).toEqual([]);
  });
});
