import { createWriteStream, type WriteStream } from "node:fs";
import type { NatsConnection } from "@nats-io/nats-core";
import { IngestWorker, LiveIngestWorker, type IngestCounts, type IngestHandler } from "../cloud/ingest.js";
import { HUB_DEFAULTS } from "../cloud/hub.js";
import { createLogger } from "../logger.js";
import { connectServer, serverFlags } from "./connect.js";
import { durationFlag, EXIT, parse, reportError, UsageError, type Command, type Io } from "./command.js";
import { subjectProblem } from "./watch.js";

const usage = `Usage: edge-gateway cloud ingest --server URL --queue NAME [options]

A worker that writes every reading as one JSON line to stdout (or --out FILE, appended).

Durable (default): pulls from the durable consumer NAME on the hub stream (created if needed)
with explicit acks. Start several workers with the same --queue and they share the readings;
a reading is acked after it was written, nak'ed with --nak-delay when writing failed, and
redelivered (to any worker) up to --max-deliver times; readings stored while no worker ran are
delivered when one starts. Consumer state (pending, ack pending, redelivered) is printed to
stderr on SIGUSR1 and on exit (SIGINT/SIGTERM).

  --queue NAME         consumer (and queue group) name, shared by the workers       (required)
  --filter SUBJECT     only readings on SUBJECT, e.g. 'sensors.temperature.>' (one filter per
                       consumer on nats-server 2.9; a consumer's filter cannot be changed)
  --out FILE           append to FILE instead of stdout
  --max-deliver N      deliveries of one reading before it is given up (default 5)
  --ack-wait DURATION  time to process a reading before it is redelivered (default 30s)
  --nak-delay DURATION delay before a failed reading is redelivered (default 1s)
  --stream NAME        hub stream (default TELEMETRY)
  --live               no consumer: a core queue subscription on sensors.> (or --filter):
                       at-most-once, only while connected, nothing redelivered

Common options: --server URL (default $NATS_URL or nats://127.0.0.1:4222), --creds FILE`;

function duration(v: string | undefined, flag: string, dflt: number): number {
  return durationFlag(flag, v, "30s") ?? dflt;
}

/** Writes one line and resolves once it was handed to the OS (so the ack follows the write). */
function lineWriter(out: WriteStream | NodeJS.WriteStream): IngestHandler {
  return (m) =>
    new Promise<void>((resolve, reject) => {
      out.write(`${JSON.stringify(m.reading)}\n`, (err) => (err ? reject(err) : resolve()));
    });
}

function countsText(c: IngestCounts): string {
  return `this worker: processed ${c.processed}, failed ${c.failed}, given up ${c.terminated}, redeliveries ${c.redeliveries}`;
}

async function runWorker(nc: NatsConnection, values: Record<string, string | boolean | undefined>, io: Io): Promise<number> {
  const queue = values.queue;
  if (typeof queue !== "string" || !/^[A-Za-z0-9_-]+$/.test(queue)) throw new UsageError("--queue NAME is required: letters, digits, '-' and '_'");
  const filter = values.filter as string | undefined;
  if (filter !== undefined) {
    const problem = subjectProblem(filter);
    if (problem) throw new UsageError(`invalid --filter ${JSON.stringify(filter)}: ${problem}`);
  }
  const maxDeliver = values["max-deliver"] === undefined ? 5 : Number(values["max-deliver"]);
  if (!Number.isInteger(maxDeliver) || maxDeliver < 1) throw new UsageError("--max-deliver must be a whole number ≥ 1");
  const ackWaitMs = duration(values["ack-wait"] as string | undefined, "--ack-wait", 30_000);
  const nakDelayMs = duration(values["nak-delay"] as string | undefined, "--nak-delay", 1000);
  const out = typeof values.out === "string" ? createWriteStream(values.out, { flags: "a" }) : process.stdout;
  const logger = createLogger("warn", 2);
  const handler = lineWriter(out);
  const stream = (values.stream as string | undefined) ?? HUB_DEFAULTS.stream;

  const worker = values.live
    ? new LiveIngestWorker(nc, { queue, filter, handler, logger })
    : await IngestWorker.start(nc, { queue, stream, filter, maxDeliver, ackWaitMs, nakDelayMs, handler, logger });
  const report = async (when: string) => {
    if (worker instanceof IngestWorker) {
      try {
        const r = await worker.report();
        io.err(`${when}: consumer ${r.stream}/${r.consumer}: pending ${r.numPending}, ack pending ${r.numAckPending}, redelivered ${r.numRedelivered}, waiting pulls ${r.numWaiting}; ${countsText(worker.counts)}`);
      } catch (err) {
        io.err(`${when}: consumer info unavailable (${err instanceof Error ? err.message : String(err)}); ${countsText(worker.counts)}`);
      }
    } else {
      io.err(`${when}: live queue group ${queue} on ${filter ?? "sensors.>"}; ${countsText(worker.counts)}`);
    }
  };
  io.err(
    values.live
      ? `ingesting live (at-most-once) from ${filter ?? "sensors.>"} in queue group ${queue} (SIGUSR1: report, Ctrl-C: stop)`
      : `ingesting from stream ${stream} through durable consumer ${queue}${filter ? ` (filter ${filter})` : ""} (SIGUSR1: report, Ctrl-C: stop)`,
  );
  const onUsr1 = () => void report("report");
  process.on("SIGUSR1", onUsr1);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    void worker.done.then(stop);
  });
  process.off("SIGUSR1", onUsr1);
  await worker.stop();
  await report("exit");
  if (out !== process.stdout) await new Promise<void>((r) => (out as WriteStream).end(r));
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
          filter: { type: "string" },
          out: { type: "string" },
          "max-deliver": { type: "string" },
          "ack-wait": { type: "string" },
          "nak-delay": { type: "string" },
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
      if (values.queue === undefined) throw new UsageError("--queue NAME is required");
      const nc = await connectServer(values.server, values.creds);
      try {
        return await runWorker(nc, values, io);
      } finally {
        await nc.drain().catch(() => nc.close());
      }
    } catch (err) {
      return reportError(err, io, usage);
    }
  },
};
