/**
 * `node --import tsx bench/publisher.ts`: the publisher against a bare `js.publish` loop, side by
 * side on one nats-server, A B A B in one run (issue 13 goal 1).
 *
 * - plain: a bare nats.js loop keeping 1,024 `js.publish` (with a msg id) in flight.
 * - publisher: the Publisher alone (seq store, queue, message building, own PubAck tracking,
 *   1,024 in flight), fed by 4 sensors as fast as it takes them (yielding every 256 readings,
 *   as a driver awaiting hardware would).
 * - daemon: the in-process daemon path (simulated burst drivers → runner → publisher).
 *
 * Flags: --quick (fewer readings), --rounds N (default 3), --json.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { Publisher } from "../src/bridge/publisher/index.js";
import { SeqStore } from "../src/bridge/seq-store.js";
import { validateBootstrap } from "../src/config/load.js";
import type { SensorOf } from "../src/config/schema.js";
import { Daemon } from "../src/daemon/daemon.js";
import { NatsServerProcess, renderServerConfig } from "../src/demo/nats-server.js";
import type { Driver, DriverContext, Reading } from "../src/drivers/types.js";
import { silentLogger } from "../src/logger.js";

const quick = process.argv.includes("--quick");
const asJson = process.argv.includes("--json");
const roundsArg = process.argv.indexOf("--rounds");
const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;
const N = quick ? 20_000 : 100_000;
const IN_FLIGHT = 1024;
const log = (s: string) => (asJson ? process.stderr : process.stdout).write(`${s}\n`);
const dirs: string[] = [];
const tmp = async (p: string) => {
  const d = await mkdtemp(join(tmpdir(), p));
  dirs.push(d);
  return d;
};

const SAMPLE_BODY = JSON.stringify({ device: "bench-pi", sensor: "t-0", type: "temperature", ts: Date.now(), value: 21.5, unit: "Cel", seq: 123456, quality: "good" });

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function plainLoop(nc: NatsConnection, stream: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
  const js = jetstream(nc);
  const body = new TextEncoder().encode(SAMPLE_BODY);
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      await js.publish(`${stream.toLowerCase()}.temperature.eu-west.t-${i % 4}`, body, { msgID: `bench.${stream}.${i}` });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const rate = N / ((performance.now() - t0) / 1000);
  await jsm.streams.delete(stream);
  return rate;
}

async function publisherAlone(url: string, stream: string): Promise<{ rate: number; stats: Publisher["stats"] }> {
  const nc = await connect({ servers: url });
  const seqs = await SeqStore.open(await tmp("egw-bench-seq-"), silentLogger());
  const p = new Publisher({
    deviceId: "bench-pi",
    region: "eu-west",
    stream,
    maxBytes: 256 * 2 ** 20,
    maxAgeMs: 3_600_000,
    duplicateWindowMs: 120_000,
    queueSize: 1_000_000,
    maxInFlight: IN_FLIGHT,
    seqs,
    logger: silentLogger(),
  });
  p.attach(nc);
  await until(() => p.healthy, 10_000, "publisher ready");
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const r: Reading = { sensor: `t-${i % 4}`, type: "temperature", ts: Date.now(), value: 20 + (i % 100) / 10, unit: "Cel", quality: "good" };
    p.accept(r);
    if (i % 256 === 255) await new Promise((res) => setImmediate(res));
  }
  await until(() => p.stats.published >= N, 300_000, "publisher to publish everything");
  const rate = N / ((performance.now() - t0) / 1000);
  const stats = p.stats;
  await p.close();
  await seqs.close();
  await (await jetstreamManager(nc)).streams.delete(stream);
  await nc.close();
  return { rate, stats };
}

function burstDriver(count: number) {
  return (cfg: SensorOf<"simulated">, _ctx: DriverContext): Driver => {
    let stop = false;
    return {
      async *start(signal: AbortSignal) {
        for (let i = 0; i < count && !signal.aborted && !stop; i++) {
          yield { sensor: cfg.id, type: cfg.type, ts: Date.now(), value: 20 + (i % 100) / 10, unit: "Cel", quality: "good" } satisfies Reading;
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

async function daemonPipeline(url: string, stream: string): Promise<number> {
  const sensors = 4;
  const per = Math.ceil(N / sensors);
  const v = validateBootstrap({
    device: { id: "bench-pi", region: "eu-west" },
    nats: { servers: [url] },
    remoteConfig: false,
    http: false,
    state: await tmp("egw-bench-state-"),
    buffer: { maxBytes: "256MiB", queueSize: 1_000_000, stream },
    sensors: Array.from({ length: sensors }, (_, i) => ({ id: `t-${i}`, type: "temperature", driver: "simulated" as const, interval: "1s" })),
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  const t0 = performance.now();
  const daemon = await Daemon.start({ config: v.value, logger: silentLogger(), registry: { simulated: burstDriver(per) } });
  await until(() => daemon.publisher.stats.published >= per * sensors, 300_000, "daemon to publish everything");
  const rate = (per * sensors) / ((performance.now() - t0) / 1000);
  await daemon.stop();
  const nc = await connect({ servers: url });
  await (await jetstreamManager(nc)).streams.delete(stream);
  await nc.close();
  return rate;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const spread = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;

async function main(): Promise<void> {
  log(`publisher bench: node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${N} readings × ${rounds} rounds, ${IN_FLIGHT} in flight`);
  const server = new NatsServerProcess({ name: "bench", dir: await tmp("egw-bench-nats-"), render: renderServerConfig({ name: "bench" }) });
  await server.start();
  try {
    const nc = await connect({ servers: server.url });
    const plain: number[] = [];
    const pub: number[] = [];
    const daemon: number[] = [];
    // Warm-up (JIT, server file store), not counted.
    await plainLoop(nc, "WARMA");
    await publisherAlone(server.url, "WARMB");
    for (let r = 0; r < rounds; r++) {
      plain.push(await plainLoop(nc, `PLAIN${r}`));
      const b = await publisherAlone(server.url, `PUB${r}`);
      pub.push(b.rate);
      daemon.push(await daemonPipeline(server.url, `DAEMON${r}`));
      log(`  round ${r + 1}: plain js.publish ${Math.round(plain[r]!)}/s | publisher ${Math.round(pub[r]!)}/s (×${(pub[r]! / plain[r]!).toFixed(2)}) | daemon path ${Math.round(daemon[r]!)}/s (×${(daemon[r]! / plain[r]!).toFixed(2)})  retries ${b.stats.retries}`);
    }
    await nc.close();
    const ratios = pub.map((x, i) => x / plain[i]!);
    const dRatios = daemon.map((x, i) => x / plain[i]!);
    log(`median: plain ${Math.round(median(plain))}/s (${spread(plain)}), publisher ${Math.round(median(pub))}/s (${spread(pub)}), daemon path ${Math.round(median(daemon))}/s (${spread(daemon)})`);
    log(`ratio publisher/plain: median ${median(ratios).toFixed(2)} (rounds ${ratios.map((x) => x.toFixed(2)).join(", ")}); daemon path/plain: median ${median(dRatios).toFixed(2)} (rounds ${dRatios.map((x) => x.toFixed(2)).join(", ")})`);
    if (asJson) process.stdout.write(JSON.stringify({ n: N, rounds, plain, publisher: pub, daemon, ratio: median(ratios), daemonRatio: median(dRatios) }) + "\n");
  } finally {
    await server.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
}

await main();
