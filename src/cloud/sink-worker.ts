/**
 * The database ingest worker: pulls batches from the durable consumer on the hub stream and
 * writes each batch to a `ReadingSink` in one transaction, acking only after the commit.
 *
 * Guarantees (with a database sink, whose writes are idempotent on `(device, sensor, seq)`):
 * - a reading is acked only after the transaction holding it committed; a worker killed at any
 *   point leaves its batch unacked, and JetStream redelivers it after `ack_wait`;
 * - a redelivered, replayed or concurrently written reading is stored once (ON CONFLICT DO NOTHING);
 * - while the database is unreachable the worker keeps its batch, acks nothing, tells
 *   JetStream it is still working on it (so it is neither redelivered nor counted against
 *   max_deliver), retries with backoff, and carries on by itself when the database is back;
 * - a reading the database rejects as data (or that is not a reading, DESIGN A2) is
 *   isolated: the rest of its batch is stored and acked, it is nak'ed / given up alone.
 */
import { jetstream, jetstreamManager, type Consumer, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import { HUB_DEFAULTS } from "./hub.js";
import { ensureIngestConsumer, type ConsumerReport } from "./ingest.js";
import { toStoredReading, type ReadingSink, type StoredReading } from "./sinks/index.js";

export interface SinkWorkerOptions {
  /** Durable consumer name; workers with the same name share the readings. */
  queue: string;
  stream?: string;
  filter?: string;
  /** Default 5. Deliveries while the database is down do not count (the batch is held). */
  maxDeliver?: number;
  /** Default 30 s. */
  ackWaitMs?: number;
  /** Delay before a reading the database rejected is redelivered. Default 1 s. */
  nakDelayMs?: number;
  /** Readings per pull batch = per transaction. Default 500. */
  batch?: number;
  /** How long a pull waits for a full batch before committing what it has. Default 1 s (the server's minimum). */
  maxWaitMs?: number;
  /** First retry delay while the database is down, doubled up to 5 s. Default 250 ms. */
  retryMs?: number;
  sink: ReadingSink;
  logger: Logger;
  /** Registers the worker's metrics here (see `docs/ingest.md`). */
  registry?: Registry;
}

/** What this worker did (other workers of the same queue count their own). */
export interface SinkWorkerCounts {
  /** Readings acked after their batch committed. */
  processed: number;
  /** Of those, new rows; the rest were already stored (redelivery, replay, another worker). */
  stored: number;
  duplicates: number;
  /** Not a reading (DESIGN A2), or rejected by the database on the last delivery: given up. */
  terminated: number;
  /** Readings the database rejected as data (nak'ed). */
  failed: number;
  redeliveries: number;
  /** Failed transactions (database unavailable or rejecting a batch). */
  dbErrors: number;
  batches: number;
}

type Pending = { msg: JsMsg; reading: StoredReading };

const decoder = new TextDecoder();

export class SinkIngestWorker implements AsyncDisposable {
  readonly counts: SinkWorkerCounts = { processed: 0, stored: 0, duplicates: 0, terminated: 0, failed: 0, redeliveries: 0, dbErrors: 0, batches: 0 };
  /** Resolves when the worker stopped. */
  readonly done: Promise<void>;
  /** Since when the database is failing (ms since epoch), undefined while it works. */
  dbDownSince: number | undefined;
  lastDbError: string | undefined;
  private readonly nc: NatsConnection;
  private readonly opts: SinkWorkerOptions;
  private readonly consumer: Consumer;
  private readonly metrics: ReturnType<typeof registerMetrics> | undefined;
  private current: ConsumerMessages | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;

  private constructor(nc: NatsConnection, opts: SinkWorkerOptions, consumer: Consumer) {
    this.nc = nc;
    this.opts = opts;
    this.consumer = consumer;
    this.metrics = opts.registry ? registerMetrics(opts.registry, this) : undefined;
    this.done = this.loop();
  }

  /** Ensures the durable consumer and starts pulling. Rejects (EGW_STREAM) when the stream or consumer is unusable. */
  static async start(nc: NatsConnection, opts: SinkWorkerOptions): Promise<SinkIngestWorker> {
    await ensureIngestConsumer(nc, opts);
    const consumer = await jetstream(nc).consumers.get(opts.stream ?? HUB_DEFAULTS.stream, opts.queue);
    return new SinkIngestWorker(nc, opts, consumer);
  }

  private async loop(): Promise<void> {
    let backoff = 250;
    while (!this.stopped && !this.nc.isClosed()) {
      const batch: JsMsg[] = [];
      try {
        this.current = await this.consumer.fetch({ max_messages: this.opts.batch ?? 500, expires: Math.max(1000, this.opts.maxWaitMs ?? 1000) });
        for await (const m of this.current) batch.push(m);
        backoff = 250;
      } catch (err) {
        if (this.stopped || this.nc.isClosed()) break;
        this.opts.logger.warn({ err: errorMessage(err) }, "pull from the consumer failed: retrying");
        await this.pause(backoff);
        backoff = Math.min(backoff * 2, 5000);
      } finally {
        this.current = undefined;
      }
      if (batch.length > 0) await this.handleBatch(batch);
    }
  }

  private async handleBatch(msgs: JsMsg[]): Promise<void> {
    const maxDeliver = this.opts.maxDeliver ?? 5;
    const pending: Pending[] = [];
    for (const msg of msgs) {
      if (msg.info.deliveryCount > 1) this.counts.redeliveries++;
      let raw: unknown;
      let problem: string | undefined;
      try {
        raw = JSON.parse(decoder.decode(msg.data));
      } catch {
        problem = "not JSON";
      }
      const r = problem ? problem : toStoredReading(raw, msg.subject, msg.seq);
      if (typeof r === "string") {
        this.counts.terminated++;
        this.opts.logger.warn({ subject: msg.subject, streamSeq: msg.seq, problem: r }, "not a reading (DESIGN A2): given up, not stored");
        msg.term(r);
        continue;
      }
      pending.push({ msg, reading: { ...r, raw } });
    }
    if (pending.length === 0) return;
    const result = await this.writeHolding(pending);
    if (result === "stopped") return;
    if (result === "data-error") {
      // Isolate the reading(s) the database refuses: one transaction each.
      for (const p of pending) {
        const one = await this.writeHolding([p]);
        if (one === "stopped") return;
        if (one === "data-error") {
          this.counts.failed++;
          if (p.msg.info.deliveryCount >= maxDeliver) {
            this.counts.terminated++;
            this.opts.logger.error({ subject: p.msg.subject, streamSeq: p.msg.seq, err: this.lastDbError }, `the database rejected the reading on the last of ${maxDeliver} deliveries: given up`);
            p.msg.term("rejected by the database");
          } else {
            this.opts.logger.warn({ subject: p.msg.subject, streamSeq: p.msg.seq, err: this.lastDbError }, "the database rejected the reading: nak, redelivered later");
            p.msg.nak(this.opts.nakDelayMs ?? 1000);
          }
        } else this.ackAll([p], one);
      }
      return;
    }
    this.ackAll(pending, result);
  }

  private ackAll(pending: Pending[], added: number): void {
    for (const p of pending) p.msg.ack();
    this.counts.processed += pending.length;
    this.counts.stored += added;
    this.counts.duplicates += pending.length - added;
    this.counts.batches++;
  }

  /**
   * Writes `pending` in one transaction, holding it (no acks, `working()` so JetStream keeps it
   * ours) while the database is unavailable. Returns how many rows were new, "data-error" when
   * the database refused the data, or "stopped" when the worker was stopped while waiting.
   */
  private async writeHolding(pending: Pending[]): Promise<number | "data-error" | "stopped"> {
    let delay = this.opts.retryMs ?? 250;
    const maxDelay = Math.min(5000, Math.max(100, (this.opts.ackWaitMs ?? 30_000) / 3));
    for (;;) {
      const t0 = performance.now();
      try {
        const added = await this.opts.sink.write(pending.map((p) => p.reading));
        this.metrics?.batchSeconds.observe((performance.now() - t0) / 1000);
        if (this.dbDownSince !== undefined) {
          this.opts.logger.warn({ sink: this.opts.sink.target, downMs: Date.now() - this.dbDownSince }, "database is back: writing again");
          this.dbDownSince = undefined;
        }
        return added;
      } catch (err) {
        this.counts.dbErrors++;
        this.lastDbError = errorMessage(err);
        if (this.opts.sink.isDataError(err)) return "data-error";
        if (this.dbDownSince === undefined) {
          this.dbDownSince = Date.now();
          this.opts.logger.error(
            { sink: this.opts.sink.target, err: this.lastDbError, held: pending.length },
            `database unavailable (${this.opts.sink.kind} ${this.opts.sink.target}: ${this.lastDbError}): holding the batch, acking nothing, retrying until it is back`,
          );
        }
        if (this.stopped) return "stopped";
        for (const p of pending) p.msg.working();
        await this.pause(delay);
        if (this.stopped) return "stopped";
        delay = Math.min(delay * 2, maxDelay);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** The consumer's state on the server (shared by every worker of this queue). */
  async report(): Promise<ConsumerReport> {
    const stream = this.opts.stream ?? HUB_DEFAULTS.stream;
    const info = await (await jetstreamManager(this.nc)).consumers.info(stream, this.opts.queue);
    this.metrics?.pending.set(info.num_pending + info.num_ack_pending);
    return { stream, consumer: this.opts.queue, numPending: info.num_pending, numAckPending: info.num_ack_pending, numRedelivered: info.num_redelivered, numWaiting: info.num_waiting };
  }

  /**
   * Stops pulling; a committed batch is acked first, a batch held while the database is down is
   * left unacked (redelivered after ack_wait). Safe to call twice. Does not close the sink.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.current?.stop();
    await this.done;
    if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function registerMetrics(registry: Registry, w: SinkIngestWorker) {
  const P = "edge_gateway_ingest_";
  const c = (name: string, help: string, read: () => number) =>
    new Counter({ name: P + name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
  c("processed_total", "Readings acked after their batch committed", () => w.counts.processed);
  c("stored_total", "Readings that were new rows", () => w.counts.stored);
  c("duplicates_total", "Readings already stored (redelivery, replay, another worker)", () => w.counts.duplicates);
  c("terminated_total", "Readings given up (not a reading, or rejected on the last delivery)", () => w.counts.terminated);
  c("redeliveries_total", "Deliveries that were redeliveries", () => w.counts.redeliveries);
  c("db_errors_total", "Failed transactions (database unavailable or rejecting a batch)", () => w.counts.dbErrors);
  c("batches_total", "Committed batches", () => w.counts.batches);
  new Gauge({ name: P + "db_up", help: "1 while the database accepts writes, 0 while the worker holds a batch it cannot write", registers: [registry], collect() { this.set(w.dbDownSince === undefined ? 1 : 0); } });
  const pending = new Gauge({ name: P + "consumer_pending", help: "Readings in the stream not yet acked by any worker of this queue (num_pending + num_ack_pending), as of the last progress check", registers: [registry] });
  const batchSeconds = new Histogram({ name: P + "batch_seconds", help: "Time to write and commit one batch", buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  return { pending, batchSeconds };
}
