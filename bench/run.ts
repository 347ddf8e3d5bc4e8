/**
 * `npm run bench`: measured side by side in one run, on real nats-server and Mosquitto processes.
 * Needs dist/ (`npm run build`): the daemon is measured as the real `edge-gateway run` process.
 *
 * Parts (`--only a,b` runs a subset; default all but soak):
 * - `footprint` (bench/footprint.ts) RSS/heap of a fresh node after importing each startup module;
 * - `process`  (bench/process.ts) the real daemon process vs bare nats.js baselines, A B A B:
 *   throughput (50 sensors every 1 ms vs 1,024 `js.publish` in flight), cold start, and at 1k
 *   readings/s RSS, % CPU and live latency to a hub subscriber vs a bare core publisher;
 * - `mqtt`     (bench/mqtt.ts) the MQTT ingest vs a bare MQTT.js subscriber on one Mosquitto;
 * - `pipeline` (bench/pipeline.ts) the publisher pipeline inside this process vs a js.publish loop;
 * - `catchup`  (bench/pipeline.ts) a 100k backlog reaching the hub while live publishing goes on;
 * - `soak`     `--soak 10m`: RSS growth of one daemon at 1k readings/s (only when asked for).
 *
 * Flags: --quick (short windows, one round: a CI smoke test that the bench works, not figures),
 * --json (machine-readable summary on stdout, ratios first; the log goes to stderr),
 * --only process,mqtt, --soak 10m, --verbose, --no-stacks (Error.stackTraceLimit = 0 here),
 * --sinks (run bench/sinks.ts instead: ingest into JSON lines, SQLite and PostgreSQL).
 */
import { existsSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { spawnSync } from "node:child_process";
import { connect } from "@nats-io/transport-node";
import { renderServerConfig } from "../src/demo/nats-server.js";
import { argv, asJson, cleanup, flag, fmt, log, ms, quick, server, spread } from "./lib.js";
import { footprintBench } from "./footprint.js";
import { mqttIngestBench } from "./mqtt.js";
import { daemonPipeline, edgeBench, plainLoop } from "./pipeline.js";
import { soakBench, startEdge, steadyBench, throughputBench } from "./process.js";

if (argv.includes("--no-stacks")) Error.stackTraceLimit = 0;
// Ctrl-C or a CI timeout must not leave nats-server, Mosquitto or daemon processes behind.
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  process.once(signal, () => void cleanup().finally(() => process.exit(code)));
}

function machine() {
  const v = (cmd: string, args: string[]) => {
    // `mosquitto -h` prints its version but exits 3: read the output whatever the status.
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    return `${r.stdout ?? ""}`.trim().split("\n")[0] || "?";
  };
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? "?",
    memGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    natsServer: v("nats-server", ["--version"]),
    mosquitto: v("mosquitto", ["-h"]),
  };
}

async function main(): Promise<void> {
  const all = ["footprint", "process", "mqtt", "pipeline", "catchup"];
  const only = flag("--only")?.split(",") ?? all;
  const soak = flag("--soak");
  if (soak && !flag("--only")) only.length = 0;
  const m = machine();
  log(`edge-gateway bench (${quick ? "quick" : "full"}): ${m.nproc} × ${m.cpu}, ${m.memGiB} GiB, node ${m.node}, ${m.natsServer}, ${m.mosquitto}`);
  if ((only.includes("process") || soak) && !existsSync(new URL("../dist/cli/main.js", import.meta.url))) {
    throw new Error("bench: dist/ is missing; run `npm run build` first (the daemon is measured as the built CLI)");
  }
  const out: Record<string, unknown> = {};
  const ratios: Record<string, number> = {};

  /** Readings per pipeline round and per catch-up backlog. */
  const n = quick ? 20_000 : 100_000;
  if (only.includes("footprint")) out.footprint = await footprintBench();
  if (only.includes("catchup")) {
    // First, in a fresh bench process: the catch-up's daemon runs in this process, and after the
    // other parts (their heap here) it carried 14-16k/s where it carried 26-35k/s first or alone.
    // Its link's proxy has a process of its own. One catch-up is one sample of nats-server's
    // sourcing, which varies from round to round: 3 rounds, median.
    const rounds: Awaited<ReturnType<typeof edgeBench>>[] = [];
    for (let r = 0; r < (quick ? 1 : 3); r++) {
      const edge = await edgeBench(n);
      rounds.push(edge);
      log(`  catch-up round ${r + 1}: ${edge.catchUp.outageReadings} readings in ${edge.catchUp.seconds} s → ${edge.catchUp.readingsPerSec}/s`);
    }
    const rate = spread(rounds.map((e) => e.catchUp.readingsPerSec));
    const edge = rounds.find((e) => e.catchUp.readingsPerSec === rate.median) ?? rounds[0]!;
    ratios.catchUpPerSec = rate.median;
    log(`live latency, old in-process method (daemon and subscriber in this process) at ${edge.latency.ratePerSec}/s: p50 ${edge.latency.p50Ms} ms, p99 ${edge.latency.p99Ms} ms, max ${edge.latency.maxMs} ms`);
    log(`catch-up: ~${edge.catchUp.outageReadings} readings buffered during the outage reached the hub at ${fmt(rate, 0, " readings/s")} (live publishing continued)`);
    out.catchUp = { ...edge.catchUp, readingsPerSec: rate.median, rounds: rate };
    out.inProcessLatency = edge.latency;
  }
  if (only.includes("process") || soak) {
    const edge = await startEdge();
    try {
      if (only.includes("process")) {
        const t = await throughputBench(edge);
        ratios.throughputVsBareJsPublish = t.ratio;
        const s = await steadyBench(edge);
        ratios.rssOverIdleNodeMiB = s.rssOverBareMiB;
        ratios.cpuPctAt1k = s.cpuPct.median;
        ratios.latencyP99OverBareCoreMs = s.p99OverBareMs;
        ratios.coldStartMs = t.coldStartMs.median;
        out.throughput = t;
        out.at1k = s;
      }
      if (soak) out.soak = await soakBench(edge, ms(soak));
    } finally {
      await edge.nc.close();
    }
  }
  if (only.includes("mqtt")) {
    const r = await mqttIngestBench();
    ratios.mqttIngestVsBare = r.ratio;
    ratios.mqttIngestVsBarePaired = r.pairedRatio;
    ratios.mqttIngestCpuPerMsgBareOverIngest = r.cpuRatio;
    ratios.mqttDaemonVsBare = r.daemonRatio;
    out.mqtt = r;
  }
  if (only.includes("pipeline")) {
    const js = await server("bench", renderServerConfig({ name: "bench" }));
    const nc = await connect({ servers: js.url });
    const plain: number[] = [];
    const pipeline: number[] = [];
    for (let round = 0; round < (quick ? 1 : 3); round++) {
      plain.push(await plainLoop(nc, `PLAIN${round}`, n, 1024));
      pipeline.push(await daemonPipeline(js.url, n, 4));
      log(`  pipeline round ${round + 1}: plain js.publish ${Math.round(plain[round]!)}/s, in-process daemon pipeline ${Math.round(pipeline[round]!)}/s`);
    }
    await nc.close();
    const p = { plain: spread(plain), pipeline: spread(pipeline) };
    ratios.inProcessPipelineVsPlain = p.pipeline.median / p.plain.median;
    log(`in-process pipeline: ${ratios.inProcessPipelineVsPlain.toFixed(2)}× plain — pipeline ${fmt(p.pipeline, 0, "/s")}, plain ${fmt(p.plain, 0, "/s")} (${n} readings each)`);
    out.pipeline = { n, ...p };
  }
  if (asJson) process.stdout.write(JSON.stringify({ ratios, machine: m, quick, ...out }) + "\n");
}

try {
  // `npm run bench -- --sinks`: the ingest sink bench instead (bench/sinks.ts, also `npm run bench:sinks`).
  if (process.argv.includes("--sinks")) await import("./sinks.js");
  else await main();
} finally {
  await cleanup();
}
