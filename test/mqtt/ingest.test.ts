/**
 * MQTT ingest against a real Mosquitto (started per file on a free loopback port), with MQTT.js
 * as the devices' publisher.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createMqttIngest, type MqttIngest } from "../../src/bridge/mqtt-ingest.js";
import { mqttSchema, type MqttConfig } from "../../src/config/schema.js";
import type { DriverHealth, Reading } from "../../src/drivers/types.js";
import { silentLogger } from "../../src/logger.js";
import { freePort, startMosquitto, type Mosquitto } from "../helpers/mosquitto.js";
import { cleanupTempDirs } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";

const WAIT = { timeout: 20_000 };

let broker: Mosquitto;
let publisher: MqttClient;
let seq = 0;
/** Unique per test, so tests never see each other's topics, sessions or retained messages. */
let ns = "";

interface Running {
  ingest: MqttIngest;
  readings: Reading[];
  health: DriverHealth[];
  done: Promise<void>;
  abort: AbortController;
}
const running: Running[] = [];

function config(input: Record<string, unknown>): MqttConfig {
  return mqttSchema.parse({ url: broker.url, clientId: `gw-${ns}`, ...input });
}

function run(cfg: MqttConfig): Running {
  const health: DriverHealth[] = [];
  const ingest = createMqttIngest(cfg, { logger: silentLogger(), deviceId: "pi-test", report: (h) => health.push(h), reconnectPeriodMs: 200 });
  const readings: Reading[] = [];
  const abort = new AbortController();
  const iterable = ingest.start(abort.signal);
  const done = (async () => {
    for await (const r of iterable) readings.push(r);
  })();
  const r = { ingest, readings, health, done, abort };
  running.push(r);
  return r;
}

const lastState = (r: Running) => r.health.at(-1)?.state;
const ready = (r: Running) => waitFor(() => lastState(r) === "ok", { ...WAIT, what: "ingest connected and subscribed" });

async function stop(r: Running): Promise<void> {
  await r.ingest.close();
  await r.done;
}

const pub = (topic: string, payload: string, opts: { retain?: boolean; qos?: 0 | 1 } = {}) =>
  publisher.publishAsync(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false });

beforeAll(async () => {
  // Mosquitto drops QoS 1 messages beyond 1000 queued per client; the back-pressure test
  // queues up to ~500 there, more when the machine is busy, so give it room.
  broker = await startMosquitto({ extraConfig: ["max_queued_messages 10000"] });
  publisher = await connectAsync(broker.url, { clientId: "test-publisher", reconnectPeriod: 200 });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map(stop));
});

afterAll(async () => {
  await publisher?.endAsync(true);
  await broker?.close();
  await cleanupTempDirs();
});

const nextNs = () => (ns = `t${++seq}-${process.pid}`);

describe("mqtt ingest", () => {
  it("turns Tasmota tele/<name>/SENSOR JSON into readings, several subscriptions on one topic", async () => {
    nextNs();
    const r = run(
      config({
        subscriptions: [
          { topic: `${ns}/tele/+/SENSOR`, type: "temperature", id: "tasmota-{1}-ds", valuePath: "DS18B20.Temperature", unit: "Cel", timePath: "Time" },
          { topic: `${ns}/tele/+/SENSOR`, type: "climate", id: "tasmota-{1}-am", values: { temperature: "AM2301.Temperature", humidity: "AM2301.Humidity" }, units: { temperature: "Cel", humidity: "%RH" } },
        ],
      }),
    );
    await ready(r);
    await pub(
      `${ns}/tele/kitchen/SENSOR`,
      JSON.stringify({ Time: "2026-03-01T12:00:05Z", DS18B20: { Id: "0316A279", Temperature: 21.5 }, AM2301: { Temperature: 22.1, Humidity: 45.3 }, TempUnit: "C" }),
    );
    await waitFor(() => r.readings.length >= 2, { ...WAIT, what: "two readings" });
    const ds = r.readings.find((x) => x.sensor === "tasmota-kitchen-ds");
    const am = r.readings.find((x) => x.sensor === "tasmota-kitchen-am");
    expect(ds).toEqual({ sensor: "tasmota-kitchen-ds", type: "temperature", ts: Date.parse("2026-03-01T12:00:05Z"), value: 21.5, unit: "Cel", quality: "good" });
    expect(am).toMatchObject({ type: "climate", values: { temperature: 22.1, humidity: 45.3 }, units: { temperature: "Cel", humidity: "%RH" }, quality: "good" });
    expect(Math.abs((am?.ts ?? 0) - Date.now())).toBeLessThan(10_000); // receive time
    expect(r.ingest.counters.subscriptions.map((c) => c.read)).toEqual([1, 1]);
  });

  it("turns zigbee2mqtt/<name> JSON into multi-value readings; sanitises the friendly name; ON/OFF and booleans become 1/0", async () => {
    nextNs();
    const r = run(
      config({
        subscriptions: [
          {
            topic: `${ns}/zigbee2mqtt/+`,
            type: "climate",
            id: "z2m-{1}",
            values: { temperature: "temperature", humidity: "humidity", battery: "battery", occupancy: "occupancy", state: "state" },
          },
        ],
      }),
    );
    await ready(r);
    await pub(`${ns}/zigbee2mqtt/Living Room.sensor`, JSON.stringify({ temperature: 19.5, humidity: 51, battery: 100, linkquality: 87, occupancy: true, state: "OFF" }));
    await pub(`${ns}/zigbee2mqtt/bad`, JSON.stringify({ temperature: null, linkquality: 3 }));
    await pub(`${ns}/zigbee2mqtt/0x00158d0001`, JSON.stringify({ temperature: "20.25", humidity: 40 }));
    await waitFor(() => r.readings.length >= 2 && r.ingest.counters.subscriptions[0]?.read === 3, { ...WAIT, what: "three messages handled" });
    expect(r.readings.map((x) => [x.sensor, x.values])).toEqual([
      ["z2m-Living_Room_sensor", { temperature: 19.5, humidity: 51, battery: 100, occupancy: 1, state: 0 }],
      ["z2m-0x00158d0001", { temperature: 20.25, humidity: 40 }],
    ]);
    expect(r.ingest.counters.subscriptions[0]?.rejected).toEqual({ "missing-path": 1 });
  });

  it("reads plain-number payloads and fills {1}, {2} from + levels", async () => {
    nextNs();
    const r = run(config({ subscriptions: [{ topic: `${ns}/home/+/+/temperature`, type: "temperature", id: "{1}-{2}", unit: "Cel" }] }));
    await ready(r);
    await pub(`${ns}/home/floor1/hall/temperature`, "21.5");
    await pub(`${ns}/home/floor1/attic/temperature`, "  -3e1 \n");
    await pub(`${ns}/home/floor1/hall/humidity`, "50"); // does not match the filter
    await waitFor(() => r.readings.length >= 2, { ...WAIT, what: "two readings" });
    expect(r.readings.map((x) => [x.sensor, x.type, x.value, x.unit])).toEqual([
      ["floor1-hall", "temperature", 21.5, "Cel"],
      ["floor1-attic", "temperature", -30, "Cel"],
    ]);
  });

  it("captures the rest of the topic with # (levels joined, '/' sanitised to '_') and rejects an empty id", async () => {
    nextNs();
    const r = run(
      config({
        subscriptions: [
          { topic: `${ns}/sensors/#`, type: "level", id: "s-{1}" },
          { topic: `${ns}/raw/#`, type: "level", id: "{1}" },
        ],
      }),
    );
    await ready(r);
    await pub(`${ns}/sensors/a/b.c/d`, "1");
    await pub(`${ns}/raw`, "2"); // # matches zero levels: {1} = "" → empty id → invalid-id
    await pub(`${ns}/raw/x y`, "3");
    await waitFor(() => r.readings.length >= 2 && r.ingest.counters.subscriptions[1]?.read === 2, { ...WAIT, what: "messages handled" });
    expect(r.readings.map((x) => [x.sensor, x.value])).toEqual([
      ["s-a_b_c_d", 1],
      ["x_y", 3],
    ]);
    expect(r.ingest.counters.subscriptions[1]?.rejected).toEqual({ "invalid-id": 1 });
    for (const x of r.readings) expect(x.sensor).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("counts junk per subscription and reason, publishes nothing for it and keeps going", async () => {
    nextNs();
    const r = run(
      config({
        subscriptions: [
          { topic: `${ns}/tele/+/SENSOR`, type: "temperature", id: "t-{1}", valuePath: "DS18B20.Temperature" },
          { topic: `${ns}/plain/+`, type: "temperature", id: "p-{1}" },
        ],
      }),
    );
    await ready(r);
    await pub(`${ns}/tele/a/SENSOR`, "{not json");
    await pub(`${ns}/tele/a/SENSOR`, JSON.stringify({ BME280: { Temperature: 1 } }));
    await pub(`${ns}/tele/a/SENSOR`, JSON.stringify({ DS18B20: { Temperature: "warm" } }));
    await pub(`${ns}/tele/a/SENSOR`, JSON.stringify({ DS18B20: { Temperature: { c: 1 } } }));
    await pub(`${ns}/tele/a/SENSOR`, "");
    await pub(`${ns}/tele/a/SENSOR`, Buffer.from([0xff, 0xfe, 0x00, 0x7b]).toString("latin1"));
    await pub(`${ns}/plain/x`, "NaN");
    await pub(`${ns}/plain/x`, "twelve");
    await pub(`${ns}/plain/x`, "{}");
    await pub(`${ns}/tele/a/SENSOR`, JSON.stringify({ DS18B20: { Temperature: 20 } }));
    await pub(`${ns}/plain/x`, "7");
    await waitFor(() => r.readings.length >= 2, { ...WAIT, what: "the valid readings after the junk" });
    expect(r.readings.map((x) => [x.sensor, x.value])).toEqual([
      ["t-a", 20],
      ["p-x", 7],
    ]);
    expect(r.ingest.counters.subscriptions[0]?.rejected).toEqual({ "not-json": 2, "missing-path": 1, "not-numeric": 2, empty: 1 });
    expect(r.ingest.counters.subscriptions[1]?.rejected).toEqual({ "not-numeric": 3 });
    expect(r.ingest.counters.subscriptions.map((c) => c.read)).toEqual([7, 4]);
    expect(lastState(r)).toBe("ok");
  });

  it("caps the distinct sensor ids a subscription may produce (maxSensors)", async () => {
    nextNs();
    const r = run(config({ subscriptions: [{ topic: `${ns}/m/+`, type: "level", id: "{1}", maxSensors: 2 }] }));
    await ready(r);
    for (const [dev, v] of [["a", 1], ["b", 2], ["c", 3], ["a", 4]] as const) await pub(`${ns}/m/${dev}`, String(v));
    await waitFor(() => r.readings.length === 3, WAIT);
    expect(r.readings.map((x) => [x.sensor, x.value])).toEqual([
      ["a", 1],
      ["b", 2],
      ["a", 4],
    ]);
    expect(r.ingest.counters.subscriptions[0]?.rejected).toEqual({ "too-many-sensors": 1 });
  });

  it("routes a message exactly once per subscription when filters overlap (MQTT 5 subscription ids)", async () => {
    nextNs();
    const r = run(
      config({
        subscriptions: [
          { topic: `${ns}/ov/+/temp`, type: "temperature", id: "a-{1}" },
          { topic: `${ns}/ov/#`, type: "any", id: "b-{1}" },
        ],
      }),
    );
    await ready(r);
    await pub(`${ns}/ov/k/temp`, "5");
    await pub(`${ns}/ov/end`, "6");
    await waitFor(() => r.readings.some((x) => x.sensor === "b-end"), { ...WAIT, what: "the second message" });
    expect(r.readings.map((x) => x.sensor).sort()).toEqual(["a-k", "b-end", "b-k_temp"]);
  });

  it("reconnects and keeps forwarding after a broker restart, without restarting the ingest", async () => {
    nextNs();
    const r = run(config({ subscriptions: [{ topic: `${ns}/x/+`, type: "temperature", id: "{1}" }] }));
    await ready(r);
    await pub(`${ns}/x/before`, "1");
    await waitFor(() => r.readings.length === 1, WAIT);
    await broker.restart();
    await waitFor(() => r.health.some((h) => h.state === "error") && lastState(r) === "ok", { ...WAIT, what: "error then ok again" });
    const err = r.health.find((h) => h.state === "error");
    expect(err?.state === "error" && err.error.message).toMatch(/unreachable/);
    await waitFor(() => publisher.connected, WAIT);
    await pub(`${ns}/x/after`, "2");
    await waitFor(() => r.readings.length === 2, { ...WAIT, what: "message published after the restart" });
    expect(r.readings.map((x) => x.sensor)).toEqual(["before", "after"]);
    expect(r.ingest.counters.connects).toBe(2);
  });

  it("subscribes again when the broker comes back without the session (store lost)", async () => {
    nextNs();
    const r = run(config({ subscriptions: [{ topic: `${ns}/y/+`, type: "temperature", id: "{1}" }] }));
    await ready(r);
    await broker.stop();
    await rm(join(broker.dir, "mosquitto.db"), { force: true });
    await waitFor(() => lastState(r) === "error", WAIT);
    await broker.start();
    await waitFor(() => lastState(r) === "ok", { ...WAIT, what: "subscribed again" });
    await waitFor(() => publisher.connected, WAIT);
    await pub(`${ns}/y/fresh`, "3");
    await waitFor(() => r.readings.length === 1, { ...WAIT, what: "message after the resubscribe" });
    expect(r.readings[0]).toMatchObject({ sensor: "fresh", value: 3 });
  });

  it("delivers QoS 1 messages published while the ingest was stopped, when it starts again with the same client id", async () => {
    nextNs();
    const cfg = config({ subscriptions: [{ topic: `${ns}/q/+`, type: "count", id: "{1}" }] });
    const first = run(cfg);
    await ready(first);
    await stop(first);
    for (let i = 1; i <= 5; i++) await pub(`${ns}/q/m${i}`, String(i));
    const second = run(cfg);
    expect(second.ingest.clientId).toBe(first.ingest.clientId);
    await waitFor(() => second.readings.length === 5, { ...WAIT, what: "the five queued messages" });
    expect(second.readings.map((x) => x.value)).toEqual([1, 2, 3, 4, 5]);
  });

  it("never forwards retained messages replayed at subscribe (MQTT 5: not sent; 3.1.1: counted as retained), but forwards live ones, also live retained ones", async () => {
    for (const protocolVersion of [5, 4] as const) {
      nextNs();
      await pub(`${ns}/r/dev`, "11", { retain: true });
      const r = run(config({ protocolVersion, subscriptions: [{ topic: `${ns}/r/+`, type: "level", id: "{1}" }] }));
      await ready(r);
      await pub(`${ns}/r/dev`, "12");
      await pub(`${ns}/r/dev`, "13", { retain: true }); // published live with retain: delivered live, forwarded
      await waitFor(() => r.readings.length >= 2, { ...WAIT, what: `live messages (v${protocolVersion})` });
      expect(r.readings.map((x) => x.value)).toEqual([12, 13]);
      expect(r.ingest.counters.subscriptions[0]?.rejected).toEqual(protocolVersion === 4 ? { retained: 1 } : {});
      await pub(`${ns}/r/dev`, "", { retain: true }); // clear the retained message
      await stop(r);
      running.splice(running.indexOf(r), 1);
    }
  });

  it("reports error while the broker is unreachable and ok once it is up, then forwards", async () => {
    nextNs();
    await broker.stop();
    const r = run(config({ subscriptions: [{ topic: `${ns}/h/+`, type: "level", id: "{1}" }] }));
    try {
      await waitFor(() => lastState(r) === "error", { ...WAIT, what: "error report" });
      const h = r.health.at(-1);
      expect(h?.state === "error" && h.error.name).toBe("GatewayError");
    } finally {
      await broker.start();
    }
    await ready(r);
    await waitFor(() => publisher.connected, WAIT);
    await pub(`${ns}/h/up`, "1");
    await waitFor(() => r.readings.length === 1, WAIT);
  });

  it("restarts cleanly with a changed config and the same client id; the old subscription's messages count as unmatched", async () => {
    nextNs();
    const before = run(config({ subscriptions: [{ topic: `${ns}/old/+`, type: "level", id: "old-{1}" }] }));
    await ready(before);
    await stop(before);
    const after = run(config({ subscriptions: [{ topic: `${ns}/new/+`, type: "level", id: "new-{1}" }] }));
    await ready(after);
    await pub(`${ns}/old/x`, "1"); // the broker session still holds old/+
    await pub(`${ns}/new/y`, "2");
    await waitFor(() => after.readings.length === 1 && after.ingest.counters.unmatched === 1, { ...WAIT, what: "one reading, one unmatched" });
    expect(after.readings[0]).toMatchObject({ sensor: "new-y", value: 2 });
    expect(before.readings).toEqual([]);
  });

  it("close() resolves promptly while the broker is unreachable", async () => {
    const port = await freePort(); // nothing listens there
    const health: DriverHealth[] = [];
    const ingest = createMqttIngest(mqttSchema.parse({ url: `mqtt://127.0.0.1:${port}`, subscriptions: [{ topic: "a/+", type: "t", id: "{1}" }] }), {
      logger: silentLogger(),
      deviceId: "pi-x",
      report: (h) => health.push(h),
      reconnectPeriodMs: 100,
    });
    const done = (async () => {
      for await (const _ of ingest.start(new AbortController().signal)) void _;
    })();
    await waitFor(() => health.at(-1)?.state === "error", WAIT);
    const t0 = Date.now();
    await ingest.close();
    await done;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(ingest.counters.connects).toBe(0);
  });

  it("uses edge-gateway-<deviceId> as default client id; close() is safe twice; a second start() while running is refused", async () => {
    nextNs();
    const cfg = mqttSchema.parse({ url: broker.url, subscriptions: [] });
    const ingest = createMqttIngest(cfg, { logger: silentLogger(), deviceId: "pi-0042", report: () => {} });
    expect(ingest.clientId).toBe("edge-gateway-pi-0042");
    const ac = new AbortController();
    const it1 = ingest.start(ac.signal);
    expect(() => ingest.start(ac.signal)).toThrow(/already started/);
    const drained = (async () => {
      for await (const _ of it1) void _;
    })();
    await waitFor(() => ingest.counters.connects === 1, WAIT);
    await ingest.close();
    await ingest.close();
    await drained;
    // After close, it can start again.
    const it2 = ingest.start(ac.signal);
    const drained2 = (async () => {
      for await (const _ of it2) void _;
    })();
    await waitFor(() => ingest.counters.connects === 2, WAIT);
    ac.abort();
    await drained2;
    await ingest.close();
  });
});

describe("mqtt ingest back-pressure", () => {
  it("stops acknowledging when the consumer falls 1000 readings behind, and loses nothing", async () => {
    nextNs();
    const cfg = config({ subscriptions: [{ topic: `${ns}/bp/+`, type: "count", id: "{1}" }] });
    const health: DriverHealth[] = [];
    const ingest = createMqttIngest(cfg, { logger: silentLogger(), deviceId: "pi-test", report: (h) => health.push(h) });
    const ac = new AbortController();
    const it = ingest.start(ac.signal)[Symbol.asyncIterator]();
    try {
      const first = it.next(); // connects
      await waitFor(() => health.at(-1)?.state === "ok", WAIT);
      await pub(`${ns}/bp/s`, "0");
      expect((await first).value).toMatchObject({ value: 0 });
      // Nobody consumes now. The broker has acknowledged all 1500 to the publisher when this
      // resolves; the ingest may have taken in at most its queue limit (+1 held packet).
      await Promise.all(Array.from({ length: 1500 }, (_, i) => pub(`${ns}/bp/s`, String(i + 1))));
      await waitFor(() => ingest.counters.subscriptions[0]?.read === 1001, { ...WAIT, what: "queue filled" });
      expect(ingest.counters.subscriptions[0]?.read).toBe(1001);
      const values: number[] = [];
      const consumed = (async () => {
        while (values.length < 1500) {
          const n = await it.next();
          if (n.done) break;
          values.push(n.value.value ?? -1);
        }
      })();
      await waitFor(
        () => {
          if (values.length === 1500) return true;
          throw new Error(`have ${values.length} readings`); // becomes the timeout's cause
        },
        { ...WAIT, what: "1500 readings" },
      );
      await consumed;
      expect(values).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
    } finally {
      await ingest.close();
      await it.return?.();
    }
  });
});

describe("mqtt ingest with a broker that queues QoS 0 (queue_qos0_messages true)", () => {
  it("delivers QoS 0 messages (Tasmota's default) published while the ingest was stopped", async () => {
    const qos0Broker = await startMosquitto({ extraConfig: ["queue_qos0_messages true"] });
    const devices = await connectAsync(qos0Broker.url, { clientId: "test-qos0-publisher" });
    try {
      const cfg = mqttSchema.parse({ url: qos0Broker.url, clientId: "gw-qos0", subscriptions: [{ topic: "tele/+/SENSOR", type: "temperature", id: "{1}", valuePath: "T" }] });
      const health: DriverHealth[] = [];
      const startOnce = () => {
        const ingest = createMqttIngest(cfg, { logger: silentLogger(), deviceId: "pi-test", report: (h) => health.push(h) });
        const readings: Reading[] = [];
        const done = (async () => {
          for await (const r of ingest.start(new AbortController().signal)) readings.push(r);
        })();
        return { ingest, readings, done };
      };
      const first = startOnce();
      await waitFor(() => health.at(-1)?.state === "ok", WAIT);
      await first.ingest.close();
      await first.done;
      for (const t of [1, 2, 3]) await devices.publishAsync("tele/dev/SENSOR", JSON.stringify({ T: t }), { qos: 0 });
      // The publisher's messages are in the broker once a later QoS 1 publish is acknowledged.
      await devices.publishAsync("sync/marker", "x", { qos: 1 });
      const second = startOnce();
      try {
        await waitFor(() => second.readings.length === 3, { ...WAIT, what: "three queued QoS 0 messages" });
        expect(second.readings.map((x) => x.value)).toEqual([1, 2, 3]);
      } finally {
        await second.ingest.close();
        await second.done;
      }
    } finally {
      await devices.endAsync(true);
      await qos0Broker.close();
    }
  });
});

describe("mqtt ingest with a broker that requires a login", () => {
  it("reports error (without the password) on bad credentials, and works with good ones", async () => {
    const authBroker = await startMosquitto({ users: { gateway: "s3cret-pw" } });
    const devices = await connectAsync(authBroker.url, { clientId: "test-auth-publisher", username: "gateway", password: "s3cret-pw" });
    const sub = { topic: "a/+", type: "level", id: "{1}" };
    try {
      const badHealth: DriverHealth[] = [];
      const bad = createMqttIngest(mqttSchema.parse({ url: authBroker.url, username: "gateway", password: "wrong-pw", subscriptions: [sub] }), {
        logger: silentLogger(),
        deviceId: "pi-bad",
        report: (h) => badHealth.push(h),
        reconnectPeriodMs: 200,
      });
      const badDone = (async () => {
        for await (const _ of bad.start(new AbortController().signal)) void _;
      })();
      await waitFor(() => badHealth.at(-1)?.state === "error", { ...WAIT, what: "error report for bad login" });
      const h = badHealth.at(-1);
      const text = h?.state === "error" ? `${h.error.message} ${String((h.error.cause as Error | undefined)?.message)}` : "";
      expect(text).toMatch(/refused the connection \(check username\/password and ACL\): Connection refused: Not authorized/);
      expect(text).not.toContain("wrong-pw");
      expect(bad.counters.connects).toBe(0);
      await bad.close();
      await badDone;

      const goodHealth: DriverHealth[] = [];
      const good = createMqttIngest(mqttSchema.parse({ url: authBroker.url, username: "gateway", password: "s3cret-pw", subscriptions: [sub] }), {
        logger: silentLogger(),
        deviceId: "pi-good",
        report: (h2) => goodHealth.push(h2),
      });
      const readings: Reading[] = [];
      const goodDone = (async () => {
        for await (const r of good.start(new AbortController().signal)) readings.push(r);
      })();
      try {
        await waitFor(() => goodHealth.at(-1)?.state === "ok", WAIT);
        await devices.publishAsync("a/b", "4", { qos: 1 });
        await waitFor(() => readings.length === 1, WAIT);
        expect(readings[0]).toMatchObject({ sensor: "b", value: 4 });
      } finally {
        await good.close();
        await goodDone;
      }
    } finally {
      await devices.endAsync(true);
      await authBroker.close();
    }
  });
});
