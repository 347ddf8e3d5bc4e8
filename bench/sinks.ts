/**
 * `npm run bench:sinks` (or `npm run bench -- --sinks`): the ingest sinks side by side in one run.
 *
 * 1. Sink write throughput: N readings written straight to each sink (JSON lines file, SQLite,
 *    PostgreSQL) in batches of 500, one transaction per batch — the database alone.
 * 2. Catch-up: N readings already in the hub stream (a backlog), then one `cloud ingest`
 *    worker (SinkIngestWorker, batch 500) per sink until every reading is stored and acked.
 * Rounds are interleaved so every sink sees the same machine load. Durability as in production:
 * SQLite WAL + synchronous=FULL, PostgreSQL with fsync on, JSON lines without fsync.
 *
 * Flags: --quick (10k readings instead of 100k), --json (summary on stdout).
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { headers } from "@nats-io/nats-core";
import { SinkIngestWorker } from "../src/cloud/sink-worker.js";
import { openSink, type ReadingSink, type SinkSpec, type StoredReading } from "../src/cloud/sinks/index.js";
import { NatsServerProcess, renderServerConfig } from "../src/demo/nats-server.js";
import { silentLogger } from "../src/logger.js";
import { PostgresServer } from "../test/helpers/postgres.js";

const quick = process.argv.includes("--quick");
const asJson = process.argv.includes("--json");
const log = (s: string) => (asJson ? process.stderr : process.stdout).write(`${s}\n`);
const N = quick ? 10_000 : 100_000;
const ROUNDS = 2;
const BATCH = 500;

const dirs: string[] = [];
async function tmp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** 50 devices × 4 sensors; every 4th sensor multi-valued (PMS5003-like). */
function readingAt(i: number, base: number): StoredReading & { body: Record<string, unknown> } {
  const device = `pi-${String(i % 50).padStart(4, "0")}`;
  const s = Math.floor(i / 50) % 4;
  const seq = Math.floor(i / 200) + 1;
  const sensor = `s${s}`;
  const type = s === 3 ? "pm" : "temperature";
  const ts = base + i;
  const body =
    s === 3
      ? { device, sensor, type, ts, values: { pm1_0: 3, pm2_5: 5 + (i % 7), pm10: 7 }, unit: "ug/m3", seq, quality: "good" }
      : { device, sensor, type, ts, value: 20 + (i % 100) / 10, unit: "Cel", seq, quality: "good" };
  const subject = `sensors.${type}.eu-west.${device}.${sensor}`;
  const { values, value } = body as { values?: Record<string, number>; value?: number };
  return { device, sensor, seq, type, region: "eu-west", ts, ...(value !== undefined ? { value } : {}), ...(values ? { values } : {}), unit: body.unit, quality: "good", subject, body };
}

async function fresh(kind: SinkSpec["kind"], pg: PostgresServer, tag: string): Promise<ReadingSink> {
  if (kind === "jsonl") return openSink({ kind, file: join(await tmp("egw-bench-jsonl-"), "readings.jsonl") });
  if (kind === "sqlite") return openSink({ kind, file: join(await tmp("egw-bench-sqlite-"), "readings.db") });
  // A new database per run, so every run starts from an empty table.
  const { default: pgm } = await import("pg");
  const admin = new pgm.Client({ connectionString: pg.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE bench_${tag}`);
  await admin.end();
  return openSink({ kind, url: pg.url.replace(/\/egw$/, `/bench_${tag}`) });
}

async function main(): Promise<void> {
  log(`sink bench: ${N} readings, batch ${BATCH}, ${ROUNDS} interleaved rounds, ${cpus().length} cores`);
  const js = new NatsServerProcess({ name: "sinks", dir: await tmp("egw-bench-nats-"), render: renderServerConfig({ name: "sinks" }) });
  const pg = await PostgresServer.create({ fsync: true });
  try {
    await js.start();
    const nc = await connect({ servers: js.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "TELEMETRY", subjects: ["sensors.>"], storage: StorageType.File });
    const base = Date.now() - 86_400_000;
    const readings = Array.from({ length: N }, (_, i) => readingAt(i, base));
    const client = jetstream(nc);
    const t0 = performance.now();
    for (let i = 0; i < N; i += 1000) {
      await Promise.all(
        readings.slice(i, i + 1000).map((r) => {
          const h = headers();
          h.set("Nats-Msg-Id", `${r.device}.${r.sensor}.${r.seq}`);
          return client.publish(r.subject, JSON.stringify(r.body), { headers: h });
        }),
      );
    }
    const bytes = (await jsm.streams.info("TELEMETRY")).state.bytes;
    log(`backlog: ${N} readings in the stream (${(bytes / 1e6).toFixed(1)} MB) published in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const kinds: SinkSpec["kind"][] = ["jsonl", "sqlite", "postgres"];
    const write: Record<string, number[]> = { jsonl: [], sqlite: [], postgres: [] };
    const catchUp: Record<string, number[]> = { jsonl: [], sqlite: [], postgres: [] };
    const rows = readings.map(({ body, ...r }) => ({ ...r, raw: body }));
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of kinds) {
        const sink = await fresh(kind, pg, `w${round}`);
        const s0 = performance.now();
        for (let i = 0; i < N; i += BATCH) await sink.write(rows.slice(i, i + BATCH));
        write[kind]!.push(N / ((performance.now() - s0) / 1000));
        await sink.close();
      }
      for (const kind of kinds) {
        const sink = await fresh(kind, pg, `c${round}`);
        const wc = await connect({ servers: js.url });
        const c0 = performance.now();
        const worker = await SinkIngestWorker.start(wc, { queue: `bench-${kind}-${round}`, sink, logger: silentLogger(), batch: BATCH });
        while (worker.counts.processed < N) await new Promise((r) => setTimeout(r, 20));
        catchUp[kind]!.push(N / ((performance.now() - c0) / 1000));
        const r = await worker.report();
        if (worker.counts.stored !== (kind === "jsonl" ? N : N) || r.numPending !== 0) throw new Error(`bench: ${kind} stored ${worker.counts.stored} of ${N}, pending ${r.numPending}`);
        await worker.stop();
        await wc.close();
        await sink.close();
      }
      log(`  round ${round + 1}: write ${kinds.map((k) => `${k} ${Math.round(write[k]!.at(-1)!)}/s`).join(", ")}; catch-up ${kinds.map((k) => `${k} ${Math.round(catchUp[k]!.at(-1)!)}/s`).join(", ")}`);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    log("");
    log(`| sink | write readings/s (batch ${BATCH}) | catch-up of ${N / 1000}k backlog, readings/s | catch-up time | write vs JSON lines |`);
    log("|---|---:|---:|---:|---:|");
    for (const k of kinds) {
      log(`| ${k} | ${Math.round(mean(write[k]!))} | ${Math.round(mean(catchUp[k]!))} | ${(N / mean(catchUp[k]!)).toFixed(1)} s | ${(mean(write[k]!) / mean(write.jsonl!)).toFixed(2)} |`);
    }
    const sqliteFile = join(dirs.find((d) => d.includes("sqlite"))!, "readings.db");
    const size = await stat(sqliteFile).catch(() => undefined);
    if (size) log(`SQLite file for ${N} readings: ${(size.size / 1e6).toFixed(1)} MB (+ WAL)`);
    await nc.close();
    if (asJson) process.stdout.write(`${JSON.stringify({ n: N, batch: BATCH, write, catchUp })}\n`);
  } finally {
    await js.stop().catch(() => undefined);
    await pg.destroy().catch(() => undefined);
  }
}

try {
  await main();
} finally {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}
