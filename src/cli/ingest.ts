import type { NatsConnection } from "@nats-io/nats-core";
import { Registry } from "prom-client";
import { LiveIngestWorker, type IngestCounts } from "../cloud/ingest.js";
import { layoutOrDefault, shardStreams } from "../cloud/fleet.js";
import { HUB_DEFAULTS } from "../cloud/hub.js";
import { SinkIngestWorker, type SinkWorkerCounts } from "../cloud/sink-worker.js";
import { openSink, parseSinkSpec, toStoredReading, type ReadingSink } from "../cloud/sinks/index.js";
import { startHttpEndpoint, type HttpEndpoint } from "../daemon/http.js";
import { createLogger } from "../logger.js";
import { connectServer, serverFlags } from "./connect.js";
import { durationFlag, EXIT, parse, reportError, UsageError, type Command, type Io } from "./command.js";
import { subjectProblem } from "./watch.js";

const usage = `Usage: edge-gateway cloud ingest --server URL --queue NAME [--sink SINK] [options]

A worker that stores every reading in a database or writes it as a JSON line.

Sinks (--sink):
  sqlite:FILE          an embedded SQLite database file (created and migrated; no server)
  postgres://USER[:PASSWORD]@HOST[:PORT]/DB
                       PostgreSQL (a TimescaleDB hypertable when the extension is available);
                       several workers with the same --queue share the load
  jsonl:FILE | jsonl:- JSON lines appended to FILE, or stdout (the default; same as --out FILE)

Durable (default): pulls batches from the durable consumer NAME on the hub stream (created if
needed). Each batch is written in one transaction and acked only after the commit; a reading
already stored (same device, sensor, seq) is not stored again, so redeliveries, restarts and
replays store every reading exactly once (JSON lines: at least once). While the database is
unreachable the worker holds its batch, acks nothing, logs the error and retries until the
database is back. A reading the database refuses is nak'ed with --nak-delay and given up after
--max-deliver deliveries. Readings stored while no worker ran are delivered when one starts.
Consumer state (pending, ack pending, redelivered) is printed to stderr on SIGUSR1 and on exit
(SIGINT/SIGTERM); a progress line (readings/s, pending) every --progress while it catches up.

  --queue NAME         consumer (and queue group) name, shared by the workers       (required)
  --sink SINK          where readings go (see above; default jsonl:-)
  --filter SUBJECT     only readings on SUBJECT, e.g. 'sensors.temperature.>' (one filter per
                       consumer on nats-server 2.9; a consumer's filter cannot be changed)
  --out FILE           same as --sink jsonl:FILE
  --batch N            readings per pull and per transaction (default 500)
  --max-deliver N      deliveries of one reading before it is given up (default 5)
  --ack-wait DURATION  time to process a reading before it is redelivered (default 30s)
  --nak-delay DURATION delay before a refused reading is redelivered (default 1s)
  --progress DURATION  progress line period while readings are pending (default 10s)
  --metrics HOST:PORT  serve /metrics (Prometheus) and /healthz, e.g. 127.0.0.1:9465
  --stream NAME        hub stream (default: every stream of the fleet — one consumer NAME on
                       each shard of \`cloud init --shards K\` — else TELEMETRY)
  --live               no consumer: a core queue subscription on sensors.> (or --filter):
                       at-most-once, only while connected, nothing redelivered

Common options: --server URL (default $NATS_URL or nats://127.0.0.1:4222), --creds FILE
See docs/ingest.md (schema, exactly-once, metrics) and \`cloud history | latest | gaps\`.`;

function duration(v: string | undefined, flag: string, dflt: number): number {
  return durationFlag(flag, v, "30s") ?? dflt;
}

function wholeFlag(v: string | boolean | undefined, flag: string, dflt: number): number {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a whole number ≥ 1`);
  return n;
}

function countsText(c: IngestCounts | SinkWorkerCounts): string {
  const base = `this worker: processed ${c.processed}, failed ${c.failed}, given up ${c.terminated}, redeliveries ${c.redeliveries}`;
  return "stored" in c ? `${base}, stored ${c.stored}, duplicates ${c.duplicates}, db errors ${c.dbErrors}` : base;
}

async function runWorker(nc: NatsConnection, values: Record<string, string | string[] | boolean | undefined>, sink: ReadingSink, io: Io): Promise<number> {
  const queue = values.queue as string;
  const filter = values.filter as string | undefined;
  const maxDeliver = wholeFlag(values["max-deliver"] as string | undefined, "--max-deliver", 5);
  const batch = wholeFlag(values.batch as string | undefined, "--batch", 500);
  const ackWaitMs = duration(values["ack-wait"] as string | undefined, "--ack-wait", 30_000);
  const nakDelayMs = duration(values["nak-delay"] as string | undefined, "--nak-delay", 1000);
  const progressMs = duration(values.progress as string | undefined, "--progress", 10_000);
  const logger = createLogger("warn", 2);
  // Every shard stream of the fleet (cloud init --shards), or the one --stream names.
  const streams = typeof values.stream === "string" ? [values.stream] : shardStreams(await layoutOrDefault(nc, HUB_DEFAULTS.stream));
  const registry = new Registry();

  if (values.live) return runLive(nc, queue, filter, sink, logger, io);
  // One durable consumer per shard stream, all writing to the one sink. The Prometheus metrics
  // are the first stream's worker's (run one worker per shard with --stream for each's own).
  const workers = await Promise.all(
    streams.map((stream, i) => SinkIngestWorker.start(nc, { queue, stream, filter, maxDeliver, ackWaitMs, nakDelayMs, batch, sink, logger, registry: i === 0 ? registry : undefined })),
  );
  const processed = () => workers.reduce((n, w) => n + w.counts.processed, 0);
  const dbDown = () => workers.find((w) => w.dbDownSince !== undefined);
  let http: HttpEndpoint | undefined;
  if (typeof values.metrics === "string") {
    http = await startHttpEndpoint({
      listen: values.metrics,
      metrics: registry,
      logger,
      health: () => {
        const w = dbDown();
        return w ? { ok: false, reason: `database unavailable since ${new Date(w.dbDownSince!).toISOString()}: ${w.lastDbError ?? ""}` } : { ok: true };
      },
    });
    if (http.address) io.err(`serving /metrics and /healthz on ${http.address}${streams.length > 1 ? ` (metrics of the consumer on ${streams[0]})` : ""}`);
  }
  const report = async (when: string) => {
    for (const worker of workers) {
      try {
        const r = await worker.report();
        io.err(`${when}: consumer ${r.stream}/${r.consumer}: pending ${r.numPending}, ack pending ${r.numAckPending}, redelivered ${r.numRedelivered}, waiting pulls ${r.numWaiting}; ${countsText(worker.counts)}`);
      } catch (err) {
        io.err(`${when}: consumer info unavailable (${err instanceof Error ? err.message : String(err)}); ${countsText(worker.counts)}`);
      }
    }
  };
  io.err(`ingesting from stream${streams.length > 1 ? "s" : ""} ${streams.join(", ")} through durable consumer ${queue}${filter ? ` (filter ${filter})` : ""} into ${sink.kind} ${sink.target} (SIGUSR1: report, Ctrl-C: stop)`);
  const onUsr1 = () => void report("report");
  process.on("SIGUSR1", onUsr1);
  // Progress on catch-ups: a line per period while readings are pending or arriving.
  let last = { at: performance.now(), processed: 0 };
  const progress = setInterval(() => {
    void Promise.all(workers.map((w) => w.report())).then(
      (rs) => {
        const now = performance.now();
        const total = processed();
        const done = total - last.processed;
        const rate = done / ((now - last.at) / 1000);
        last = { at: now, processed: total };
        const pending = rs.reduce((n, r) => n + r.numPending + r.numAckPending, 0);
        const down = dbDown();
        if (pending > 0 || done > 0) {
          io.err(`progress: ${total} readings (${Math.round(rate)} readings/s), pending ${pending}${down ? `, DATABASE UNAVAILABLE for ${Math.round((Date.now() - down.dbDownSince!) / 1000)}s: ${down.lastDbError ?? ""}` : ""}`);
        }
      },
      () => undefined,
    );
  }, progressMs);
  progress.unref();
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    void Promise.race(workers.map((w) => w.done)).then(stop);
  });
  clearInterval(progress);
  process.off("SIGUSR1", onUsr1);
  await Promise.all(workers.map((w) => w.stop()));
  await report("exit");
  await http?.close();
  return EXIT.ok;
}

/** `--live`: a core queue subscription, at most once (no consumer, nothing to shard). */
async function runLive(nc: NatsConnection, queue: string, filter: string | undefined, sink: ReadingSink, logger: ReturnType<typeof createLogger>, io: Io): Promise<number> {
  const worker = new LiveIngestWorker(nc, {
    queue,
    filter,
    logger,
    handler: async (m) => {
      const r = toStoredReading(m.reading, m.subject);
      if (typeof r === "string") throw new Error(`not a reading: ${r}`);
      await sink.write([{ ...r, raw: m.reading }]);
    },
  });
  const report = (when: string) => io.err(`${when}: live queue group ${queue} on ${filter ?? "sensors.>"}; ${countsText(worker.counts)}`);
  io.err(`ingesting live (at-most-once) from ${filter ?? "sensors.>"} in queue group ${queue} into ${sink.kind} ${sink.target} (SIGUSR1: report, Ctrl-C: stop)`);
  const onUsr1 = () => report("report");
  process.on("SIGUSR1", onUsr1);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    void worker.done.then(stop);
  });
  process.off("SIGUSR1", onUsr1);
  await worker.stop();
  report("exit");
  return EXIT.ok;
}

/** `edge-gateway cloud ingest`. */
export const ingest: Command = {
  usage,
  async run(argv, io) {
    try {
      const { values, positionals } = parse(
        argv,
        {
          ...serverFlags,
          queue: { type: "string" },
          sink: { type: "string" },
          filter: { type: "string" },
          out: { type: "string" },
          batch: { type: "string" },
          "max-deliver": { type: "string" },
          "ack-wait": { type: "string" },
          "nak-delay": { type: "string" },
          progress: { type: "string" },
          metrics: { type: "string" },
          stream: { type: "string" },
          live: { type: "boolean" },
        },
        true,
      );
      if (values.help) {
        io.out(usage);
        return EXIT.ok;
      }
      if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
      const queue = values.queue;
      if (typeof queue !== "string" || !/^[A-Za-z0-9_-]+$/.test(queue)) throw new UsageError("--queue NAME is required: letters, digits, '-' and '_'");
      if (values.filter !== undefined) {
        const problem = subjectProblem(values.filter);
        if (problem) throw new UsageError(`invalid --filter ${JSON.stringify(values.filter)}: ${problem}`);
      }
      if (values.sink !== undefined && values.out !== undefined) throw new UsageError("give --sink or --out, not both (--out FILE is --sink jsonl:FILE)");
      const spec = parseSinkSpec(values.sink ?? `jsonl:${values.out ?? "-"}`);
      if (typeof spec === "string") throw new UsageError(spec);
      // Flags are checked before anything is opened; runWorker reads them again.
      for (const f of ["max-deliver", "batch"] as const) wholeFlag(values[f], `--${f}`, 1);
      for (const f of ["ack-wait", "nak-delay", "progress"] as const) duration(values[f], `--${f}`, 1);
      const sink = await openSink(spec);
      try {
        const nc = await connectServer(values.server, values.creds);
        try {
          return await runWorker(nc, values, sink, io);
        } finally {
          await nc.drain().catch(() => nc.close());
        }
      } finally {
        await sink.close();
      }
    } catch (err) {
      return reportError(err, io, usage);
    }
  },
};
