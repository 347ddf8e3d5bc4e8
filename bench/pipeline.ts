/**
 * In-process parts of `npm run bench` (the Publisher inside this process, not the CLI):
 *
 * - pipeline: readings/s through the daemon (burst driver → runner → publisher → JetStream on a
 *   local server) next to a plain nats.js loop doing pipelined `js.publish` of the same payload;
 * - catch-up: N readings left on the leaf by an outage, then the time until the hub has them
 *   all, while the daemon keeps publishing live readings; the leaf link runs through a TCP proxy
 *   in a child process (bench/children/proxy.mjs). Before that, live latency measured the old
 *   way (subscriber and daemon in this process), kept to compare with bench/process.ts, which
 *   measures it with each part in its own process.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { addDevice, ensureHubStream } from "../src/cloud/hub.js";
import { renderLeafConfig } from "../src/config/leaf-config.js";
import { validateBootstrap } from "../src/config/load.js";
import type { BootstrapInput, SensorOf } from "../src/config/schema.js";
import { Daemon } from "../src/daemon/daemon.js";
import { renderServerConfig } from "../src/demo/nats-server.js";
import type { Driver, DriverContext, Reading } from "../src/drivers/types.js";
import { silentLogger } from "../src/logger.js";
import { child, log, quick, server, stopChild, tmp, until, verbose } from "./lib.js";

function config(input: Partial<BootstrapInput> & { servers: string[]; state: string; sensors: BootstrapInput["sensors"] }) {
  const v = validateBootstrap({
    device: { id: input.device?.id ?? "bench-pi", region: "eu-west" },
    nats: { servers: input.servers },
    remoteConfig: false,
    http: false,
    state: input.state,
    buffer: { maxBytes: "256MiB", queueSize: 1_000_000, ...input.buffer },
    sensors: input.sensors,
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.value;
}

/** A driver that yields `count` readings as fast as the consumer takes them. */
function burstDriver(count: number) {
  return (cfg: SensorOf<"simulated">, _ctx: DriverContext): Driver => {
    let stop = false;
    return {
      async *start(signal: AbortSignal) {
        for (let i = 0; i < count && !signal.aborted && !stop; i++) {
          const r: Reading = { sensor: cfg.id, type: cfg.type, ts: Date.now(), value: 20 + (i % 100) / 10, unit: "Cel", quality: "good" };
          yield r;
          // Let the publisher's acks in: a real driver awaits hardware between samples.
          if (i % 256 === 255) await new Promise((res) => setImmediate(res));
        }
        await new Promise<void>((res) => signal.addEventListener("abort", () => res(), { once: true }));
      },
      async close() {
        stop = true;
      },
      async [Symbol.asyncDispose]() {
        stop = true;
      },
    };
  };
}

/**
 * `js.publish` that retries a timed-out publish with the same msg id (deduplicated by the
 * stream): on a loaded machine a PubAck can take longer than the client's 5 s, and the bench
 * must measure, not crash.
 */
async function publishRetrying(js: ReturnType<typeof jetstream>, subject: string, body: Uint8Array, msgID: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await js.publish(subject, body, { msgID });
      return;
    } catch (err) {
      if (attempt >= 10 || (err as Error).name !== "TimeoutError") throw err;
    }
  }
}

const SAMPLE_BODY = JSON.stringify({ device: "bench-pi", sensor: "t-0", type: "temperature", ts: Date.now(), value: 21.5, unit: "Cel", seq: 123456, quality: "good" });

export async function plainLoop(nc: NatsConnection, stream: string, n: number, inFlight: number): Promise<number> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  const js = jetstream(nc);
  const body = new TextEncoder().encode(SAMPLE_BODY);
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await publishRetrying(js, `${stream.toLowerCase()}.temperature.eu-west.t-${i % 4}`, body, `bench.${stream}.${i}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const secs = (performance.now() - t0) / 1000;
  await jsm.streams.delete(stream);
  return n / secs;
}

export async function daemonPipeline(url: string, n: number, sensors: number): Promise<number> {
  const state = await tmp("egw-bench-state-");
  const per = Math.ceil(n / sensors);
  const cfg = config({
    servers: [url],
    state,
    buffer: { stream: `D${Date.now()}` },
    sensors: Array.from({ length: sensors }, (_, i) => ({ id: `t-${i}`, type: "temperature", driver: "simulated" as const, interval: "1s" })),
  });
  const t0 = performance.now();
  const daemon = await Daemon.start({ config: cfg, logger: silentLogger(), registry: { simulated: burstDriver(per) } });
  await until(() => daemon.publisher.stats.published >= per * sensors, 300_000, "daemon pipeline to publish everything");
  const secs = (performance.now() - t0) / 1000;
  if (verbose) log(`    publisher ${JSON.stringify(daemon.publisher.stats)}`);
  await daemon.stop();
  const nc = await connect({ servers: url });
  await (await jetstreamManager(nc)).streams.delete(cfg.buffer.stream);
  await nc.close();
  return (per * sensors) / secs;
}

/** The leaf link's TCP proxy in a child process (bench/children/proxy.mjs): `cut`, `restore`, `close`. */
async function proxyProcess(targetPort: number) {
  const proc = child(process.execPath, [new URL("./children/proxy.mjs", import.meta.url).pathname, String(targetPort)], { stdio: "pipe" });
  const lines: string[] = [];
  let buf = "";
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) lines.push(buf.slice(0, i));
  });
  await until(() => lines.some((l) => l.startsWith("port ")), 20_000, "link proxy");
  const port = Number(lines.find((l) => l.startsWith("port "))!.slice(5));
  const command = async (cmd: "cut" | "restore") => {
    const n = lines.length;
    proc.stdin!.write(`${cmd}\n`);
    await until(() => lines.slice(n).includes(`ok ${cmd}`), 20_000, `link proxy ${cmd}`);
  };
  return { port, cut: () => command("cut"), restore: () => command("restore"), close: () => stopChild(proc) };
}

export async function edgeBench(n: number) {
  const hub = await server("hub", renderServerConfig({ name: "hub", domain: "hub", leafListener: true }));
  const link = await proxyProcess(hub.leafPort);
  const state = await tmp("egw-bench-edge-");
  const liveSensors = 10;
  const cfg = config({
    servers: ["nats://127.0.0.1:1"],
    state,
    device: { id: "bench-pi", region: "eu-west" },
    sensors: Array.from({ length: liveSensors }, (_, i) => ({ id: `live-${i}`, type: "temperature", driver: "simulated" as const, interval: "10ms" })),
  });
  const leaf = await server("bench-pi", (ports, storeDir) => renderLeafConfig(cfg, { hub: `nats-leaf://127.0.0.1:${link.port}`, listen: `127.0.0.1:${ports.client}`, storeDir, monitor: false }));
  await until(() => leaf.leafLinkUp(), 20_000, "leaf link");
  cfg.nats.servers = [leaf.url];
  const hubNc = await connect({ servers: hub.url });
  await ensureHubStream(hubNc);
  await addDevice(hubNc, "bench-pi");
  const hubJsm = await jetstreamManager(hubNc);
  const hubCount = async () => (await hubJsm.streams.info("TELEMETRY")).state.messages;

  // Live latency at 1,000 readings/s: 10 sensors every 10 ms; ts is taken at the read.
  const latencies: number[] = [];
  const sub = hubNc.subscribe("sensors.temperature.eu-west.>", {
    callback: (_e, m) => {
      const ts = (m.json() as { ts: number }).ts;
      latencies.push(Date.now() - ts);
    },
  });
  const daemon = await Daemon.start({ config: cfg, logger: silentLogger(), linkCheckMs: 1000 });
  const warm = Date.now();
  await until(() => Date.now() - warm > 2000, 10_000, "warm-up");
  latencies.length = 0;
  const window = Date.now();
  await until(() => Date.now() - window > (quick ? 3000 : 10_000), 60_000, "latency window");
  const rate = latencies.length / ((Date.now() - window) / 1000);
  const sorted = [...latencies].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
  const latency = { samples: sorted.length, ratePerSec: Math.round(rate), p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: sorted[sorted.length - 1] ?? NaN };
  sub.unsubscribe();

  // Outage: cut the link, let N extra readings pile up on the leaf (a burst sensor), restore.
  await link.cut();
  await until(() => daemon.link.hub === "down", 20_000, "link down");
  const leafNc = await connect({ servers: leaf.url });
  const leafJsm = await jetstreamManager(leafNc);
  const leafCount = async () => (await leafJsm.streams.info("TELEMETRY")).state.messages;
  const before = await leafCount();
  // The burst goes straight into the leaf stream with the daemon's own subject and msg-id shape,
  // while the daemon's 10 live sensors keep publishing through it.
  const js = jetstream(leafNc);
  let next = 0;
  const body = new TextEncoder().encode(SAMPLE_BODY);
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await publishRetrying(js, "sensors.temperature.eu-west.bench-pi.backlog", body, `bench-pi.backlog.${i + 1}`);
    }
  };
  await Promise.all(Array.from({ length: 512 }, worker));
  const during = (await leafCount()) - before;
  await link.restore();
  const t0 = performance.now();
  await until(async () => (await hubCount()) >= (await leafCount()), 600_000, "hub to catch up");
  const catchUpSecs = (performance.now() - t0) / 1000;
  const backlog = await leafCount();
  await daemon.stop();
  await leafNc.close();
  await hubNc.close();
  await link.close();
  // Each round stops its servers (cleanup() at exit would leave them idling beside the next round).
  await leaf.stop();
  await hub.stop();
  return { latency, catchUp: { outageReadings: during, hubTotal: backlog, seconds: Number(catchUpSecs.toFixed(2)), readingsPerSec: Math.round(during / catchUpSecs) } };
}

