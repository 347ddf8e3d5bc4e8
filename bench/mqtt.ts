/**
 * MQTT ingest vs a bare MQTT.js subscriber on the same Mosquitto, A B A B.
 *
 * Each side is its own process (bench/children): the gateway's `createMqttIngest` from dist/
 * yielding Readings (topic match, id template, JSON path, number coercion, back-pressure), and a
 * bare MQTT.js client that parses each payload's JSON and reads the value. Both use a persistent
 * QoS 1 session: the subscriber connects once and leaves, `count` Tasmota-style messages are
 * queued in the broker for it, then it connects again and drains them; the figure is messages
 * per second from the first to the last one received. So the publisher's speed and the broker's
 * intake are outside the measurement; the broker's delivery (at most 20 QoS 1 messages in flight
 * per client, Mosquitto's default) is the same for both.
 */
import type { ChildProcess } from "node:child_process";
import { connectAsync } from "mqtt";
import { startMosquitto } from "../test/helpers/mosquitto.js";
import { cleanupNats, startJetStreamServer } from "../test/helpers/nats.js";
import { cleanupTempDirs, tempDir } from "../test/helpers/procs.js";
import { child, fmt, log, quick, spread, stopChild, until, type Spread } from "./lib.js";

const TOPIC = "tele/+/SENSOR";
const DEVICES = 20;

function lines(c: ChildProcess): () => string[] {
  const out: string[] = [];
  let buf = "";
  c.stdout?.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) out.push(buf.slice(0, i));
  });
  return () => out;
}

/** Messages per second over the drain, and (where the child reports it) its CPU µs per message. */
export interface Drained {
  rate: number;
  cpuUsPerMsg: number;
}

export async function drain(script: string, args: string[], count: number, publish: () => Promise<void>, nodeArgs: string[] = []): Promise<Drained> {
  const path = new URL(`./children/${script}`, import.meta.url).pathname;
  // 1st connection: make the session and its subscription, then leave.
  const first = child(process.execPath, [path, ...args], { stdio: "pipe" });
  const out1 = lines(first);
  await until(() => out1().includes("ready"), 20_000, `${script} to subscribe`);
  await stopChild(first);
  await publish();
  // 2nd connection: the broker delivers the queued backlog.
  const second = child(process.execPath, [...nodeArgs, path, ...args], { stdio: "pipe" });
  const out2 = lines(second);
  await until(() => out2().some((l) => /^\d/.test(l)), 300_000, `${script} to receive ${count} messages`);
  await stopChild(second);
  const [secs, , cpu] = out2().find((l) => /^\d/.test(l))!.split(" ");
  return { rate: count / Number(secs), cpuUsPerMsg: cpu === undefined ? NaN : (Number(cpu) * 1e6) / count };
}

/** A QoS 1 publisher of `count` Tasmota-style messages over `DEVICES` topics. */
export async function publisher(url: string, count: number) {
  const pub = await connectAsync(url, { clientId: "bench-pub" });
  const publish = async () => {
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++) {
      const body = `{"Time":"2026-12-02T14:00:00","DS18B20":{"Id":"0316A279","Temperature":${(20 + (i % 50) / 10).toFixed(1)}},"TempUnit":"C"}`;
      ps.push(pub.publishAsync(`tele/dev-${i % DEVICES}/SENSOR`, body, { qos: 1 }));
      if (ps.length >= 1000) await Promise.all(ps.splice(0));
    }
    await Promise.all(ps);
  };
  return { pub, publish };
}

export const MQTT_TOPIC = TOPIC;
export const BROKER_CONFIG = ["max_queued_messages 0", "max_inflight_messages 0"];

export interface MqttResult {
  ratio: number;
  /** Median over rounds of ingest/bare in the same round (A B pairs). */
  pairedRatio: number;
  /** Bare MQTT.js CPU per message / the ingest's: ≥ 1 means the ingest costs no more CPU per message. */
  cpuRatio: number;
  ingest: Spread;
  bare: Spread;
  ingestCpuUsPerMsg: Spread;
  bareCpuUsPerMsg: Spread;
  /** The whole daemon, acknowledging each QoS 1 message only after the leaf stored it. */
  daemon: Spread;
  daemonRatio: number;
  count: number;
}

export async function mqttIngestBench(): Promise<MqttResult> {
  const count = quick ? 2_000 : 100_000;
  const rounds = quick ? 1 : 5;
  // Unlimited queue for offline persistent sessions (default 1000 would drop the backlog).
  const broker = await startMosquitto({ extraConfig: BROKER_CONFIG });
  try {
    const { pub, publish } = await publisher(broker.url, count);
    const ingest: Drained[] = [];
    const bare: Drained[] = [];
    const daemon: number[] = [];
    const leaf = await startJetStreamServer();
    for (let r = 0; r < rounds; r++) {
      ingest.push(await drain("mqtt-ingest.mjs", [broker.url, TOPIC, String(count)], count, publish));
      bare.push(await drain("bare.mjs", ["mqtt", broker.url, TOPIC, String(count)], count, publish));
      const state = await tempDir("egw-bench-mqttd-");
      daemon.push((await drain("mqtt-daemon.mjs", [broker.url, TOPIC, String(count), leaf.url, state], count, publish)).rate);
      log(
        `  mqtt round ${r + 1}: ingest ${Math.round(ingest[r]!.rate)}/s (${ingest[r]!.cpuUsPerMsg.toFixed(1)} µs CPU/msg), ` +
          `bare MQTT.js ${Math.round(bare[r]!.rate)}/s (${bare[r]!.cpuUsPerMsg.toFixed(1)} µs), daemon (ack after PubAck) ${Math.round(daemon[r]!)}/s`,
      );
    }
    await pub.endAsync();
    await leaf.stop();
    const res = {
      ingest: spread(ingest.map((d) => d.rate)),
      bare: spread(bare.map((d) => d.rate)),
      ingestCpuUsPerMsg: spread(ingest.map((d) => d.cpuUsPerMsg)),
      bareCpuUsPerMsg: spread(bare.map((d) => d.cpuUsPerMsg)),
      daemon: spread(daemon),
      count,
    };
    const ratio = res.ingest.median / res.bare.median;
    const pairedRatio = spread(ingest.map((d, i) => d.rate / bare[i]!.rate)).median;
    const cpuRatio = res.bareCpuUsPerMsg.median / res.ingestCpuUsPerMsg.median;
    const daemonRatio = res.daemon.median / res.bare.median;
    log(
      `MQTT ingest ${ratio.toFixed(2)}× bare MQTT.js (median of the per-round ratios ${pairedRatio.toFixed(2)}×): ingest ${fmt(res.ingest, 0, "/s")}, bare ${fmt(res.bare, 0, "/s")}, ${count} queued QoS 1 messages each`,
    );
    log(`MQTT ingest CPU per message: ${fmt(res.ingestCpuUsPerMsg, 1, " µs")}, bare MQTT.js ${fmt(res.bareCpuUsPerMsg, 1, " µs")} (bare/ingest ${cpuRatio.toFixed(2)}×; less noisy than the rates, which share 2 cores with the broker)`);
    log(`MQTT through the whole daemon, acknowledged after the leaf's PubAck: ${daemonRatio.toFixed(2)}× bare MQTT.js (${fmt(res.daemon, 0, "/s")})`);
    return { ratio, pairedRatio, cpuRatio, daemonRatio, ...res };
  } finally {
    await broker.close();
    await cleanupNats();
    await cleanupTempDirs();
  }
}
