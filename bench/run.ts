/**
 * `npm run bench`: measured side by side in one run, on real nats-server processes.
 *
 * 1. Pipeline throughput: readings/s through the daemon (driver → runner → publisher →
 *    JetStream on a local server) next to a plain nats.js loop doing pipelined `js.publish`
 *    of the same payload to the same server; the ratio is the figure to watch (target ≥ 0.9).
 * 2. The daemon's memory: RSS of a real `edge-gateway run` process publishing 100 readings/s.
 * 3. Catch-up: N readings left on the leaf by an outage, then the time until the hub has them
 *    all, while the daemon keeps publishing live readings.
 * 4. Live latency daemon read → cloud subscriber on the hub at 1,000 readings/s (p50/p99).
 *
 * Flags: --quick (smaller N, for a smoke run), --json (machine-readable summary on stdout),
 * --sinks (run bench/sinks.ts instead: ingest into JSON lines, SQLite and PostgreSQL).
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { addDevice, ensureHubStream } from "../src/cloud/hub.js";
import { renderLeafConfig } from "../src/config/leaf-config.js";
import { validateBootstrap } from "../src/config/load.js";
import type { BootstrapInput, SensorOf } from "../src/config/schema.js";
import { Daemon } from "../src/daemon/daemon.js";
import { NatsServerProcess, renderServerConfig } from "../src/demo/nats-server.js";
import { TcpProxy } from "../src/demo/tcp-proxy.js";
import type { Driver, DriverContext, Reading } from "../src/drivers/types.js";
import { silentLogger } from "../src/logger.js";

const quick = process.argv.includes("--quick");
if (process.argv.includes("--no-stacks")) Error.stackTraceLimit = 0;
const asJson = process.argv.includes("--json");
const log = (s: string) => (asJson ? process.stderr : process.stdout).write(`${s}\n`);

const dirs: string[] = [];
const servers: NatsServerProcess[] = [];
async function tmp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
async function server(name: string, render: NatsServerProcess["spec"]["render"]): Promise<NatsServerProcess> {
  const s = new NatsServerProcess({ name, dir: await tmp(`egw-bench-${name}-`), render });
  servers.push(s);
  await s.start();
  return s;
}

async function until(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

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

const SAMPLE_BODY = JSON.stringify({ device: "bench-pi", sensor: "t-0", type: "temperature", ts: Date.now(), value: 21.5, unit: "Cel", seq: 123456, quality: "good" });

async function plainLoop(nc: NatsConnection, stream: string, n: number, inFlight: number): Promise<number> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  const js = jetstream(nc);
  const body = new TextEncoder().encode(SAMPLE_BODY);
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await js.publish(`${stream.toLowerCase()}.temperature.eu-west.t-${i % 4}`, body, { msgID: `bench.${stream}.${i}` });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const secs = (performance.now() - t0) / 1000;
  await jsm.streams.delete(stream);
  return n / secs;
}

async function daemonPipeline(url: string, n: number, sensors: number): Promise<number> {
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
  if (process.argv.includes("--verbose")) log(`    publisher ${JSON.stringify(daemon.publisher.stats)}`);
  await daemon.stop();
  const nc = await connect({ servers: url });
  await (await jetstreamManager(nc)).streams.delete(cfg.buffer.stream);
  await nc.close();
  return (per * sensors) / secs;
}

async function rssOfRealDaemon(url: string): Promise<{ rssMiB: number; hwmMiB: number; published: number }> {
  const state = await tmp("egw-bench-rss-");
  const file = join(state, "gateway.yaml");
  const sensors = Array.from({ length: 10 }, (_, i) => ({ id: `s-${i}`, type: "temperature", driver: "simulated", interval: "100ms", unit: "Cel" }));
  await writeFile(file, JSON.stringify({ device: { id: "rss-pi", region: "eu-west" }, nats: { servers: [url] }, remoteConfig: false, http: false, state, log: { level: "warn" }, buffer: { stream: "RSS", maxBytes: "64MiB" }, sensors }));
  const child = spawn(process.execPath, [new URL("../bin/edge-gateway.js", import.meta.url).pathname, "run", "--config", file], { stdio: "ignore" });
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const count = async () => (await jsm.streams.info("RSS").catch(() => undefined))?.state.messages ?? 0;
  await until(async () => (await count()) > 0, 20_000, "real daemon to publish");
  const warm = Date.now();
  await until(() => Date.now() - warm > (quick ? 3000 : 10_000), 60_000, "warm-up");
  const status = await readFile(`/proc/${child.pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  const published = await count();
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  await nc.close();
  return { rssMiB: kb("VmRSS"), hwmMiB: kb("VmHWM"), published };
}

async function edgeBench(n: number) {
  const hub = await server("hub", renderServerConfig({ name: "hub", domain: "hub", leafListener: true }));
  const link = await TcpProxy.start(hub.leafPort);
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
      await js.publish("sensors.temperature.eu-west.bench-pi.backlog", body, { msgID: `bench-pi.backlog.${i + 1}` });
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
  return { latency, catchUp: { outageReadings: during, hubTotal: backlog, seconds: Number(catchUpSecs.toFixed(2)), readingsPerSec: Math.round(during / catchUpSecs) } };
}

async function main(): Promise<void> {
  const n = quick ? 20_000 : 100_000;
  if (process.argv.includes("--pipeline-only")) {
    const js = await server("bench", renderServerConfig({ name: "bench" }));
    log(`daemon pipeline ${Math.round(await daemonPipeline(js.url, n, 4))}/s`);
    return;
  }
  log(`edge-gateway bench (${quick ? "quick" : "full"}): node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`);
  const js = await server("bench", renderServerConfig({ name: "bench" }));
  const nc = await connect({ servers: js.url });
  const plain: number[] = [];
  const pipeline: number[] = [];
  // Interleaved rounds, so both see the same machine load.
  for (let round = 0; round < 3; round++) {
    plain.push(await plainLoop(nc, `PLAIN${round}`, n, 1024));
    pipeline.push(await daemonPipeline(js.url, n, 4));
    log(`  round ${round + 1}: plain js.publish ${Math.round(plain[round]!)}/s, daemon pipeline ${Math.round(pipeline[round]!)}/s`);
  }
  await nc.close();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ratio = median(pipeline) / median(plain);
  log(`pipeline throughput: daemon ${Math.round(median(pipeline))}/s vs plain ${Math.round(median(plain))}/s → ratio ${ratio.toFixed(2)} (median of 3, ${n} readings each)`);
  const rss = await rssOfRealDaemon(js.url);
  log(`daemon RSS (edge-gateway run, 10 sensors × 10/s): ${rss.rssMiB.toFixed(1)} MiB (peak ${rss.hwmMiB.toFixed(1)} MiB), ${rss.published} readings published`);
  const edge = await edgeBench(n);
  log(`live latency read → hub subscriber at ${edge.latency.ratePerSec}/s: p50 ${edge.latency.p50Ms} ms, p99 ${edge.latency.p99Ms} ms, max ${edge.latency.maxMs} ms (${edge.latency.samples} samples)`);
  log(`catch-up: ${edge.catchUp.outageReadings} readings buffered during the outage reached the hub in ${edge.catchUp.seconds} s → ${edge.catchUp.readingsPerSec} readings/s (live publishing continued)`);
  if (asJson) {
    process.stdout.write(
      JSON.stringify({ n, plain, pipeline, ratio, rss, ...edge }) + "\n",
    );
  }
}

try {
  // `npm run bench -- --sinks`: the ingest sink bench instead (bench/sinks.ts, also `npm run bench:sinks`).
  if (process.argv.includes("--sinks")) await import("./sinks.js");
  else await main();
} finally {
  for (const s of servers) await s.stop().catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}
