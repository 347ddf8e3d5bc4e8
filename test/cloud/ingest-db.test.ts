import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { pino } from "pino";
import { Registry } from "prom-client";
import { SinkIngestWorker } from "../../src/cloud/sink-worker.js";
import { openSink, openStore, parseSinkSpec, type ReadingStore, type SinkSpec } from "../../src/cloud/sinks/index.js";
import { spawnCli } from "../helpers/cli.js";
import { cleanupNats } from "../helpers/nats.js";
import { cleanupPostgres } from "../helpers/postgres.js";
import { cleanupTempDirs, killAll, stopProc, waitForOutput } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { database, fleet, hubWithStream, publishSeries, range, type Series } from "./setup.js";

const open: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.stop().catch(() => undefined);
});
afterAll(async () => {
  await killAll();
  await cleanupNats();
  await cleanupPostgres();
  await cleanupTempDirs();
});

function spec(s: string): SinkSpec {
  const p = parseSinkSpec(s);
  if (typeof p === "string") throw new Error(p);
  return p;
}

async function consumerInfo(nc: NatsConnection, queue: string) {
  return (await jetstreamManager(nc)).consumers.info("TELEMETRY", queue);
}

/** Every (device, sensor) of `series` holds exactly the published seqs, once each, and nothing else is stored. */
async function expectExactlyOnce(store: ReadingStore, series: Series[], n: number): Promise<void> {
  let total = 0;
  for (const s of series) {
    const rows = await store.history({ device: s.device, sensor: s.sensor, since: 0, limit: 1_000_000 });
    expect(rows.map((r) => r.seq).sort((a, b) => a - b), `${s.device}/${s.sensor}`).toEqual([...s.seqs].sort((a, b) => a - b));
    total += rows.length;
  }
  expect(total).toBe(n);
  const summary = await store.gaps({});
  expect(summary.series.reduce((k, x) => k + x.stored, 0)).toBe(n);
}

async function stored(store: ReadingStore): Promise<number> {
  return (await store.gaps({})).series.reduce((k, x) => k + x.stored, 0);
}

describe.each(["sqlite", "postgres"] as const)("cloud ingest › %s sink, exactly once", (kind) => {
  it("two workers on one durable consumer, one killed with -9 mid-batch, then a replay of the whole stream: every reading in the stream is in the table exactly once", async () => {
    const { server, nc } = await hubWithStream(`exact-${kind}`);
    open.push({ stop: () => nc.close() });
    const db = await database(kind);
    const series = fleet(2500);
    // A backlog (readings stored while no worker ran), so both workers are busy for a while.
    const n = await publishSeries(nc, series, Date.now() - 3_600_000);
    const args = (queue: string) => ["cloud", "ingest", "--server", server.url, "--queue", queue, "--sink", db.spec, "--batch", "100", "--ack-wait", "3s", "--progress", "1s"];
    // A starts alone, so whatever the consumer has delivered and not seen acked is A's.
    const a = spawnCli(args("db"));
    open.push({ stop: () => stopProc(a) });
    // Generous: starting a CLI through tsx on a loaded 2-core machine can take long.
    await waitForOutput(a, "ingesting from stream", 90_000);
    const store = await openStore(spec(db.spec));
    open.push({ stop: () => store.close() });
    // Freeze A (SIGSTOP) at a moment it holds delivered, unacked readings; if it froze between
    // batches, let it go on and try again.
    await waitFor(async () => {
      a.kill("SIGSTOP");
      const info = await consumerInfo(nc, "db");
      if ((await stored(store)) > 0 && info.num_ack_pending > 0 && info.num_pending > n / 4) return true;
      a.kill("SIGCONT");
      return false;
    }, { what: "worker A frozen holding unacked readings", timeout: 60_000, interval: 5 });
    // B joins the same durable consumer and works while A is frozen mid-batch; then A dies.
    const b = spawnCli([...args("db"), "--metrics", "127.0.0.1:0"]);
    open.push({ stop: () => stopProc(b) });
    await waitForOutput(b, "ingesting from stream", 90_000);
    await waitFor(() => /progress: [1-9]/.test(b.stderr()), { what: "worker B storing readings", timeout: 30_000 });
    a.kill("SIGKILL");
    expect(await a.exited).toBe("SIGKILL");

    await waitFor(async () => {
      const info = await consumerInfo(nc, "db");
      return info.num_pending === 0 && info.num_ack_pending === 0 && (await stored(store)) === n;
    }, { what: `all ${n} readings stored and acked by the surviving worker`, timeout: 60_000, interval: 100 });
    expect(b.stderr()).toMatch(/progress: \d+ readings \(\d+ readings\/s\), pending \d+/);
    const metricsAt = /serving \/metrics and \/healthz on (\S+)/.exec(b.stderr())![1]!;
    const metrics = await (await fetch(`http://${metricsAt}/metrics`)).text();
    expect(Number(/^edge_gateway_ingest_processed_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(n / 4);
    expect(metrics).toMatch(/^edge_gateway_ingest_db_up 1$/m);
    expect(metrics).toMatch(/^edge_gateway_ingest_batch_seconds_count [1-9]\d*$/m);
    expect((await fetch(`http://${metricsAt}/healthz`)).status).toBe(200);
    await expectExactlyOnce(store, series, n);

    // Replay: a new consumer delivers the whole stream again; nothing is stored twice.
    const replay = spawnCli(args("replay"));
    open.push({ stop: () => stopProc(replay) });
    await waitFor(async () => {
      const info = await consumerInfo(nc, "replay").catch(() => undefined);
      return info !== undefined && info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.stream_seq === n;
    }, { what: "replay of the whole stream acked", timeout: 60_000, interval: 100 });
    replay.kill("SIGTERM");
    expect(await replay.exited).toBe(0);
    expect(replay.stderr()).toContain(`processed ${n}, failed 0, given up 0, redeliveries 0, stored 0, duplicates ${n}, db errors 0`);
    await expectExactlyOnce(store, series, n);
    b.kill("SIGTERM");
    expect(await b.exited).toBe(0);
    // A's unacked readings went to B after ack_wait: the kill really left readings in flight.
    const redeliveries = Number(/exit: .*redeliveries (\d+)/.exec(b.stderr())?.[1]);
    expect(redeliveries).toBeGreaterThan(0);
  }, 300_000);

  it("the database unavailable for 10 s: a clear error, nothing acked, no redeliveries used up; it resumes by itself and stores every reading once", async () => {
    const { server, nc } = await hubWithStream(`outage-${kind}`);
    open.push({ stop: () => nc.close() });
    const db = await database(kind);
    const logs: string[] = [];
    const logger = pino({ level: "warn" }, new Writable({ write: (chunk: Buffer, _e, cb) => { logs.push(chunk.toString()); cb(); } }));
    const sink = await openSink(spec(db.spec));
    open.push({ stop: () => sink.close() });
    const wc = await server.connect();
    open.push({ stop: () => wc.close() });
    const registry = new Registry();
    const worker = await SinkIngestWorker.start(wc, { queue: "db", sink, logger, batch: 100, ackWaitMs: 4000, registry });
    open.push(worker);
    const store = await openStore(spec(db.spec));
    open.push({ stop: () => store.close() });

    const before: Series[] = fleet(100);
    const n1 = await publishSeries(nc, before, Date.now() - 60_000);
    await waitFor(async () => (await stored(store)) === n1 && (await consumerInfo(nc, "db")).num_ack_pending === 0, { what: "first readings stored", timeout: 20_000 });

    // Outage: PostgreSQL stopped; SQLite locked by another connection (as by a backup or a long writer).
    let release: () => Promise<void>;
    if (db.pg) {
      await db.pg.stop();
      release = () => db.pg!.start();
    } else {
      const { default: Database } = await import("better-sqlite3");
      const holder = new Database(db.spec.slice("sqlite:".length));
      holder.exec("BEGIN EXCLUSIVE");
      release = () => {
        holder.exec("COMMIT");
        holder.close();
        return Promise.resolve();
      };
    }
    const after: Series[] = fleet(200).map((s) => ({ ...s, seqs: range(101, 200) }));
    const n2 = await publishSeries(nc, after, Date.now() - 30_000);
    const floor = (await consumerInfo(nc, "db")).ack_floor.stream_seq;
    expect(floor).toBe(n1);
    await waitFor(() => worker.dbDownSince !== undefined, { what: "the worker to notice the database is down", timeout: 20_000 });
    const processed = worker.counts.processed;
    // Held for 10 s (ack_wait is 4 s): the floor never moves, the held batch is never redelivered.
    await waitFor(async () => {
      const info = await consumerInfo(nc, "db");
      expect(info.ack_floor.stream_seq).toBe(floor);
      expect(info.num_redelivered).toBe(0);
      expect(worker.counts.processed).toBe(processed);
      return Date.now() - worker.dbDownSince! >= 10_000;
    }, { what: "10 s of outage", timeout: 40_000, interval: 200 });
    expect(worker.counts.dbErrors).toBeGreaterThan(1);
    expect(await registry.metrics()).toMatch(/^edge_gateway_ingest_db_up 0$/m);
    expect(await registry.metrics()).toMatch(new RegExp(`^edge_gateway_ingest_db_errors_total ${worker.counts.dbErrors}$`, "m"));
    const errors = logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50);
    expect(errors.length).toBe(1); // one error per outage, not one per retry
    expect(errors[0]!.msg).toMatch(new RegExp(`database unavailable \\(${kind} .*\\): holding the batch, acking nothing, retrying until it is back`));

    await release();
    await waitFor(async () => (await stored(store)) === n1 + n2 && (await consumerInfo(nc, "db")).num_ack_pending === 0 && (await consumerInfo(nc, "db")).num_pending === 0, {
      what: "every reading stored after the database returned",
      timeout: 60_000,
      interval: 100,
    });
    expect(worker.dbDownSince).toBeUndefined();
    expect(logs.some((l) => l.includes("database is back"))).toBe(true);
    expect(worker.counts).toMatchObject({ processed: n1 + n2, stored: n1 + n2, duplicates: 0, terminated: 0, redeliveries: 0 });
    expect((await consumerInfo(nc, "db")).num_redelivered).toBe(0);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/^edge_gateway_ingest_db_up 1$/m);
    expect(metrics).toMatch(new RegExp(`^edge_gateway_ingest_processed_total ${n1 + n2}$`, "m"));
    expect(metrics).toMatch(/^edge_gateway_ingest_batch_seconds_count [1-9]\d*$/m);
    await expectExactlyOnce(store, [...before, ...after].reduce<Series[]>((acc, s) => {
      const same = acc.find((x) => x.device === s.device && x.sensor === s.sensor);
      if (same) same.seqs = [...same.seqs, ...s.seqs];
      else acc.push({ ...s, seqs: [...s.seqs] });
      return acc;
    }, []), n1 + n2);
  }, 120_000);
});
