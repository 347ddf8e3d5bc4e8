/**
 * The daemon measured as a user runs it: the real `edge-gateway run` process (bin/edge-gateway.js,
 * dist/ from `npm run build`), its own simulated drivers feeding it, on a leaf nats-server linked
 * to a hub (DESIGN topology; the link is direct, no proxy in the measuring process). Every
 * comparison is A B A B in one run, and each baseline is a process of its own (children/bare.mjs).
 *
 * - throughput: 50 sensors every 1 ms vs a bare nats.js loop with 1,024 `js.publish` in flight,
 *   both counted as readings stored per second in the leaf stream over the same window;
 * - cold start: spawn → first reading stored in the leaf stream (one sample per daemon spawn);
 * - at 1k readings/s (10 sensors every 10 ms) vs a bare core publisher at the same rate:
 *   RSS, % of one core (/proc/<pid>/stat), and live latency read → core subscriber on the hub
 *   (a third process; `ts` in the body vs receive time, ms resolution); RSS of an idle
 *   `node -e` process alongside;
 * - soak (`--soak 10m`): RSS of one daemon at 1k/s over time.
 */
import type { ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { renderLeafConfig } from "../src/config/leaf-config.js";
import { validateBootstrap } from "../src/config/load.js";
import type { NatsServerProcess } from "../src/demo/nats-server.js";
import { child, cpuTicks, fmt, log, pause, quick, renderServerConfig, rssOf, server, spread, stopChild, TICKS_PER_SEC, tmp, until, type Spread } from "./lib.js";

const DEVICE = "bench-pi";
const STREAM = "TELEMETRY";
/** The CLI the process benchmarks run; BENCH_BIN points them at another build (an A/B of two checkouts). */
const BIN = process.env.BENCH_BIN ?? new URL("../bin/edge-gateway.js", import.meta.url).pathname;
const BARE = new URL("./children/bare.mjs", import.meta.url).pathname;

export interface Edge {
  hub: NatsServerProcess;
  leaf: NatsServerProcess;
  nc: NatsConnection;
  jsm: JetStreamManager;
  stored(): Promise<number>;
  /** An empty stream with no duplicate window history: before each daemon or baseline. */
  fresh(): Promise<void>;
}

/** Hub + leaf (the device's real leaf config) with a direct leaf link; the leaf stream exists. */
export async function startEdge(): Promise<Edge> {
  const hub = await server("hub", renderServerConfig({ name: "hub", domain: "hub", leafListener: true }));
  const v = validateBootstrap({ device: { id: DEVICE, region: "eu-west" }, nats: { servers: ["nats://127.0.0.1:1"] }, remoteConfig: false, buffer: { maxBytes: "1GiB" } });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  const leaf = await server(DEVICE, (ports, storeDir) => renderLeafConfig(v.value, { hub: hub.leafUrl, listen: `127.0.0.1:${ports.client}`, storeDir, monitor: false }));
  await until(() => leaf.leafLinkUp(), 20_000, "leaf link");
  const nc = await connect({ servers: leaf.url });
  const jsm = await jetstreamManager(nc);
  // The limits the daemon's config asks for: a daemon start finds the stream as it wants it
  // (no stream update in its cold start).
  const b = v.value.buffer;
  const STREAM_CONFIG = { name: STREAM, subjects: ["sensors.>"], max_bytes: b.maxBytes, max_age: b.maxAge * 1e6, duplicate_window: b.duplicateWindow * 1e6 };
  await jsm.streams.add(STREAM_CONFIG);
  return {
    hub,
    leaf,
    nc,
    jsm,
    stored: async () => (await jsm.streams.info(STREAM)).state.messages,
    async fresh() {
      // A purge keeps the stream's duplicate window, so a new daemon (fresh state dir, seq from 1)
      // would meet its predecessor's msg ids as collisions. Delete and add instead.
      await jsm.streams.delete(STREAM);
      await jsm.streams.add(STREAM_CONFIG);
    },
  };
}

/** Spawns `edge-gateway run` with `sensors` simulated sensors every `every`. */
export async function spawnDaemon(edge: Edge, sensors: number, every: string): Promise<{ proc: ChildProcess; spawnedAt: number }> {
  const state = await tmp("egw-bench-daemon-");
  const file = join(state, "gateway.yaml");
  await writeFile(
    file,
    JSON.stringify({
      device: { id: DEVICE, region: "eu-west" },
      nats: { servers: [edge.leaf.url] },
      remoteConfig: false,
      http: false,
      state,
      log: { level: "warn" },
      buffer: { stream: STREAM, maxBytes: "1GiB" },
      sensors: Array.from({ length: sensors }, (_, i) => ({ id: `s-${i}`, type: "temperature", driver: "simulated", interval: every, unit: "Cel" })),
    }),
  );
  const spawnedAt = performance.now();
  // Executed as systemd's ExecStart does (its shebang's node flags apply), with this node first
  // on PATH.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
  return { proc: child(BIN, ["run", "--config", file], { env }), spawnedAt };
}

/** Readings stored per second over `windowMs`, after the process stored its first reading. */
async function storedRate(edge: Edge, windowMs: number): Promise<number> {
  const c0 = await edge.stored();
  const t0 = performance.now();
  await pause(windowMs);
  const c1 = await edge.stored();
  return (c1 - c0) / ((performance.now() - t0) / 1000);
}

async function firstStored(edge: Edge, since: number, base: number, what: string): Promise<number> {
  await until(async () => (await edge.stored()) > base, 120_000, what, 5);
  return performance.now() - since;
}

export interface ThroughputResult {
  ratio: number;
  daemon: Spread;
  bare: Spread;
  coldStartMs: Spread;
}

export async function throughputBench(edge: Edge): Promise<ThroughputResult> {
  const rounds = quick ? 1 : 3;
  const warm = quick ? 1000 : 2000;
  const window = quick ? 2000 : 5000;
  const daemon: number[] = [];
  const bare: number[] = [];
  const cold: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await edge.fresh();
    const d = await spawnDaemon(edge, 50, "1ms");
    cold.push(await firstStored(edge, d.spawnedAt, 0, "the daemon's first reading"));
    await pause(warm);
    daemon.push(await storedRate(edge, window));
    await stopChild(d.proc);

    await edge.fresh();
    const b = child(process.execPath, [BARE, "js", edge.leaf.url, "1024"]);
    await firstStored(edge, performance.now(), 0, "the bare loop's first reading");
    await pause(warm);
    bare.push(await storedRate(edge, window));
    await stopChild(b);
    log(`  throughput round ${r + 1}: daemon ${Math.round(daemon[r]!)}/s, bare js.publish ${Math.round(bare[r]!)}/s, cold start ${Math.round(cold[r]!)} ms`);
  }
  const res = { daemon: spread(daemon), bare: spread(bare), coldStartMs: spread(cold) };
  const ratio = res.daemon.median / res.bare.median;
  log(`throughput, whole process: ${ratio.toFixed(2)}× bare js.publish — daemon ${fmt(res.daemon, 0, "/s")}, bare ${fmt(res.bare, 0, "/s")} (stored in the leaf stream)`);
  log(`cold start, spawn → first reading stored: ${fmt(res.coldStartMs, 0, " ms")}`);
  return { ratio, ...res };
}

interface LatencyStats {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
interface Side {
  rssMiB: number[];
  cpuPct: number[];
  p50: number[];
  p99: number[];
  max: number[];
  rate: number[];
}
export interface SteadyResult {
  rssOverBareMiB: number;
  cpuPct: Spread;
  p99OverBareMs: number;
  daemon: { rssMiB: Spread; cpuPct: Spread; p50Ms: Spread; p99Ms: Spread; maxMs: Spread; ratePerSec: Spread };
  bareCore: { rssMiB: Spread; cpuPct: Spread; p50Ms: Spread; p99Ms: Spread; maxMs: Spread; ratePerSec: Spread };
  bareNodeRssMiB: Spread;
}

/** Latency subscriber on the hub, in a process of its own. */
export async function startSubscriber(edge: Edge) {
  const sub = child(process.execPath, [BARE, "sub", edge.hub.url, "sensors.>"], { stdio: "pipe" });
  const lines: string[] = [];
  let buf = "";
  sub.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) lines.push(buf.slice(0, i));
  });
  await until(() => lines.includes("ready"), 20_000, "latency subscriber");
  return {
    proc: sub,
    async report(): Promise<Record<string, LatencyStats>> {
      const n = lines.length;
      sub.stdin!.write("report\n");
      await until(() => lines.length > n, 10_000, "latency report");
      return JSON.parse(lines[n]!) as Record<string, LatencyStats>;
    },
  };
}

/** One side at 1k/s: warm up, reset latencies, then RSS/CPU/latency over the window. */
async function measureSide(proc: ChildProcess, sub: Awaited<ReturnType<typeof startSubscriber>>, device: string, side: Side, warm: number, window: number) {
  await pause(warm);
  await sub.report(); // drop the warm-up samples
  const c0 = await cpuTicks(proc.pid!);
  const t0 = performance.now();
  await pause(window);
  const c1 = await cpuTicks(proc.pid!);
  const secs = (performance.now() - t0) / 1000;
  const lat = (await sub.report())[device];
  side.rssMiB.push((await rssOf(proc.pid!)).rss);
  side.cpuPct.push(((c1 - c0) / TICKS_PER_SEC / secs) * 100);
  side.p50.push(lat?.p50 ?? NaN);
  side.p99.push(lat?.p99 ?? NaN);
  side.max.push(lat?.max ?? NaN);
  side.rate.push((lat?.samples ?? 0) / secs);
}

const newSide = (): Side => ({ rssMiB: [], cpuPct: [], p50: [], p99: [], max: [], rate: [] });
const summary = (s: Side) => ({ rssMiB: spread(s.rssMiB), cpuPct: spread(s.cpuPct), p50Ms: spread(s.p50), p99Ms: spread(s.p99), maxMs: spread(s.max), ratePerSec: spread(s.rate) });

/** At 1k readings/s: the daemon vs a bare core publisher, A B A B, with an idle `node -e` beside. */
export async function steadyBench(edge: Edge): Promise<SteadyResult> {
  const rounds = quick ? 1 : 2;
  const warm = quick ? 2000 : 5000;
  // The daemon's RSS steps up ~5-7 MiB at its first full GCs, ~80-90 s after start at 1k/s
  // (bench/RESULTS.md, "The step at ~90 s"): its window starts after that, at steady state.
  const daemonWarm = quick ? 2000 : 120_000;
  const window = quick ? 3000 : 10_000;
  const idle = child(process.execPath, ["-e", "setInterval(() => {}, 1000)"]);
  const sub = await startSubscriber(edge);
  const d = newSide();
  const b = newSide();
  const bareNode: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await edge.fresh();
    const daemon = await spawnDaemon(edge, 10, "10ms");
    await firstStored(edge, daemon.spawnedAt, 0, "the daemon's first reading");
    await measureSide(daemon.proc, sub, DEVICE, d, daemonWarm, window);
    bareNode.push((await rssOf(idle.pid!)).rss);
    await stopChild(daemon.proc);

    const core = child(process.execPath, [BARE, "core", edge.leaf.url, "10", "10"]);
    await measureSide(core, sub, "bare", b, warm, window);
    await stopChild(core);
    log(
      `  1k/s round ${r + 1}: daemon ${d.rssMiB[r]!.toFixed(1)} MiB, ${d.cpuPct[r]!.toFixed(1)} % CPU, p50/p99 ${d.p50[r]}/${d.p99[r]} ms at ${Math.round(d.rate[r]!)}/s; ` +
        `bare core publisher ${b.rssMiB[r]!.toFixed(1)} MiB, ${b.cpuPct[r]!.toFixed(1)} %, p50/p99 ${b.p50[r]}/${b.p99[r]} ms; idle node ${bareNode[r]!.toFixed(1)} MiB`,
    );
  }
  await stopChild(sub.proc);
  await stopChild(idle);
  const daemon = summary(d);
  const bareCore = summary(b);
  const bareNodeRssMiB = spread(bareNode);
  const res: SteadyResult = {
    rssOverBareMiB: daemon.rssMiB.median - bareNodeRssMiB.median,
    cpuPct: daemon.cpuPct,
    p99OverBareMs: daemon.p99Ms.median - bareCore.p99Ms.median,
    daemon,
    bareCore,
    bareNodeRssMiB,
  };
  log(`memory at 1k/s: daemon = idle node + ${res.rssOverBareMiB.toFixed(1)} MiB — daemon ${fmt(daemon.rssMiB, 1, " MiB")}, idle node ${fmt(bareNodeRssMiB, 1, " MiB")}, bare core publisher ${fmt(bareCore.rssMiB, 1, " MiB")}`);
  log(`CPU at 1k/s: daemon ${fmt(daemon.cpuPct, 1, " %")} of one core, bare core publisher ${fmt(bareCore.cpuPct, 1, " %")}`);
  log(
    `live latency read → hub subscriber at 1k/s: p99 daemon − bare = ${res.p99OverBareMs.toFixed(1)} ms — daemon p50 ${fmt(daemon.p50Ms)} / p99 ${fmt(daemon.p99Ms, 0, " ms")} / max ${fmt(daemon.maxMs)}; ` +
      `bare core publisher p50 ${fmt(bareCore.p50Ms)} / p99 ${fmt(bareCore.p99Ms, 0, " ms")} / max ${fmt(bareCore.maxMs)}`,
  );
  return res;
}

/** One daemon at 1k/s for `durationMs`: RSS every 10 s; growth = last minute's median − first minute's. */
export async function soakBench(edge: Edge, durationMs: number) {
  await edge.fresh();
  const idle = child(process.execPath, ["-e", "setInterval(() => {}, 1000)"]);
  const daemon = await spawnDaemon(edge, 10, "10ms");
  await firstStored(edge, daemon.spawnedAt, 0, "the daemon's first reading");
  const samples: { s: number; rss: number }[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < durationMs) {
    await pause(Math.min(10_000, durationMs / 6));
    samples.push({ s: Math.round((performance.now() - t0) / 1000), rss: (await rssOf(daemon.proc.pid!)).rss });
  }
  const cpu = await cpuTicks(daemon.proc.pid!);
  const idleRss = (await rssOf(idle.pid!)).rss;
  await stopChild(daemon.proc);
  await stopChild(idle);
  const n = Math.max(1, Math.min(6, Math.floor(samples.length / 3)));
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const first = med(samples.slice(0, n).map((x) => x.rss));
  const last = med(samples.slice(-n).map((x) => x.rss));
  const res = { seconds: Math.round(durationMs / 1000), firstMiB: first, lastMiB: last, growthMiB: last - first, peakMiB: Math.max(...samples.map((x) => x.rss)), idleNodeMiB: idleRss, cpuSecs: cpu / TICKS_PER_SEC, samples };
  log(`soak ${res.seconds} s at 1k/s: RSS ${first.toFixed(1)} → ${last.toFixed(1)} MiB (growth ${res.growthMiB.toFixed(1)} MiB, peak ${res.peakMiB.toFixed(1)}; idle node ${idleRss.toFixed(1)} MiB)`);
  return res;
}
