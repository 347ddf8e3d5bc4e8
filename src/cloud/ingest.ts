/**
 * Cloud-side ingest workers (`edge-gateway cloud ingest`), showing the two NATS patterns:
 *
 * - Durable (default): a durable pull consumer named after the queue on the hub stream, with
 *   explicit acks. Every worker using the same queue name pulls from the same consumer, so they
 *   share the work; a reading is acked after the handler succeeded, `nak`ed with a delay when
 *   it failed (redelivered, up to `max_deliver` deliveries, then terminated), and redelivered
 *   after `ack_wait` when a worker died holding it. At-least-once, including readings stored
 *   while no worker ran.
 * - Live (`--live`): a core subscription in a queue group on `sensors.>`: each message goes to
 *   one member, at most once, only while a worker is connected; nothing is stored or redelivered.
 */
import { AckPolicy, DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager, type ConsumerConfig, type ConsumerInfo, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { nanos, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { GatewayError, errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import { HUB_DEFAULTS } from "./hub.js";

/** One message handed to the ingest handler. */
export interface IngestMessage {
  subject: string;
  /** The body as text. */
  data: string;
  /** The body parsed as JSON (a reading, per DESIGN A2). */
  reading: unknown;
  /** `Nats-Msg-Id` (`<device>.<sensor>.<seq>`), when present. */
  msgId?: string;
  /** Hub stream sequence; undefined in live mode. */
  streamSeq?: number;
  /** 1 on first delivery; undefined in live mode. */
  deliveryCount?: number;
}

/** Processes one reading; a throw (or rejection) means "not processed": nak and redeliver. */
export type IngestHandler = (m: IngestMessage) => void | Promise<void>;

export interface IngestOptions {
  /** Durable consumer name (and live queue group); workers with the same name share the work. */
  queue: string;
  /** Hub stream. Default `TELEMETRY`. */
  stream?: string;
  /** Only readings on this subject (wildcards allowed); one filter per consumer on nats-server 2.9. */
  filter?: string;
  /** Deliveries of one reading before it is given up. Default 5. */
  maxDeliver?: number;
  /** Time a worker has to ack a reading before it is redelivered. Default 30 s. */
  ackWaitMs?: number;
  /** Delay before a failed reading is redelivered. Default 1 s. */
  nakDelayMs?: number;
  /** Readings pulled per request. Default 100. */
  batch?: number;
  handler: IngestHandler;
  logger: Logger;
}

export interface IngestCounts {
  /** Readings handled and acked. */
  processed: number;
  /** Handler failures (each one nak'ed or, on the last delivery, terminated). */
  failed: number;
  /** Readings given up after max_deliver deliveries (terminated), or unparsable. */
  terminated: number;
  /** Deliveries that were redeliveries. */
  redeliveries: number;
}

/** Consumer state for the exit / SIGUSR1 report. */
export interface ConsumerReport {
  stream: string;
  consumer: string;
  /** Readings in the stream not yet delivered to any worker. */
  numPending: number;
  /** Delivered, not yet acked. */
  numAckPending: number;
  /** Readings delivered more than once. */
  numRedelivered: number;
  numWaiting: number;
}

const decoder = new TextDecoder();

function toMessage(m: { subject: string; data: Uint8Array; headers?: { get(k: string): string } }, extra: Partial<IngestMessage> = {}): IngestMessage {
  const data = decoder.decode(m.data);
  let reading: unknown;
  try {
    reading = JSON.parse(data);
  } catch {
    reading = undefined;
  }
  const msgId = m.headers?.get("Nats-Msg-Id") || undefined;
  return { subject: m.subject, data, reading, ...(msgId ? { msgId } : {}), ...extra };
}

function consumerConfig(opts: IngestOptions): Partial<ConsumerConfig> {
  return {
    durable_name: opts.queue,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_deliver: opts.maxDeliver ?? 5,
    ack_wait: nanos(opts.ackWaitMs ?? 30_000),
    ...(opts.filter ? { filter_subject: opts.filter } : {}),
  };
}

/**
 * Creates the durable consumer, or aligns max_deliver / ack_wait of an existing one.
 * An existing consumer with another filter is an error (2.9 cannot change it): pick another
 * queue name or delete the consumer.
 */
export async function ensureIngestConsumer(nc: NatsConnection, opts: Omit<IngestOptions, "handler" | "logger">): Promise<ConsumerInfo> {
  const stream = opts.stream ?? HUB_DEFAULTS.stream;
  const jsm = await jetstreamManager(nc);
  const want = consumerConfig(opts as IngestOptions);
  let existing: ConsumerInfo | undefined;
  try {
    existing = await jsm.consumers.info(stream, opts.queue);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.status === 404)) {
      throw new GatewayError("EGW_STREAM", `cannot inspect consumer ${opts.queue} on stream ${stream}: ${errorMessage(err)}${/stream not found/i.test(errorMessage(err)) ? " (run `edge-gateway cloud init` first)" : ""}`, { cause: err });
    }
  }
  if (!existing) {
    try {
      return await jsm.consumers.add(stream, want);
    } catch (err) {
      throw new GatewayError("EGW_STREAM", `cannot create consumer ${opts.queue} on stream ${stream}: ${errorMessage(err)}`, { cause: err });
    }
  }
  const c = existing.config;
  if ((c.filter_subject ?? "") !== (opts.filter ?? "")) {
    throw new GatewayError(
      "EGW_STREAM",
      `consumer ${opts.queue} exists with filter ${JSON.stringify(c.filter_subject ?? "")}, not ${JSON.stringify(opts.filter ?? "")}: use another --queue name, or delete the consumer first`,
    );
  }
  if (c.max_deliver !== want.max_deliver || c.ack_wait !== want.ack_wait) {
    return await jsm.consumers.update(stream, opts.queue, { max_deliver: want.max_deliver, ack_wait: want.ack_wait });
  }
  return existing;
}

/** A running durable ingest worker. */
export class IngestWorker implements AsyncDisposable {
  readonly counts: IngestCounts = { processed: 0, failed: 0, terminated: 0, redeliveries: 0 };
  /** Resolves when the worker stopped (after `stop()`, or when the connection closed). */
  readonly done: Promise<void>;
  private readonly nc: NatsConnection;
  private readonly opts: IngestOptions;
  private readonly messages: ConsumerMessages;
  private stopped = false;

  private constructor(nc: NatsConnection, opts: IngestOptions, messages: ConsumerMessages) {
    this.nc = nc;
    this.opts = opts;
    this.messages = messages;
    this.done = this.loop();
  }

  /** Ensures the consumer and starts pulling. Rejects (EGW_STREAM) when the stream or consumer is unusable. */
  static async start(nc: NatsConnection, opts: IngestOptions): Promise<IngestWorker> {
    await ensureIngestConsumer(nc, opts);
    const consumer = await jetstream(nc).consumers.get(opts.stream ?? HUB_DEFAULTS.stream, opts.queue);
    const messages = await consumer.consume({ max_messages: opts.batch ?? 100 });
    return new IngestWorker(nc, opts, messages);
  }

  private async loop(): Promise<void> {
    for await (const m of this.messages) {
      await this.handle(m);
      if (this.stopped) break;
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    const maxDeliver = this.opts.maxDeliver ?? 5;
    const delivery = m.info.deliveryCount;
    if (delivery > 1) this.counts.redeliveries++;
    const msg = toMessage(m, { streamSeq: m.seq, deliveryCount: delivery });
    if (msg.reading === undefined) {
      this.counts.terminated++;
      this.opts.logger.warn({ subject: m.subject, seq: m.seq }, "not JSON: skipped (terminated, not redelivered)");
      m.term("not JSON");
      return;
    }
    try {
      await this.opts.handler(msg);
      m.ack();
      this.counts.processed++;
    } catch (err) {
      this.counts.failed++;
      if (delivery >= maxDeliver) {
        this.counts.terminated++;
        this.opts.logger.error({ subject: m.subject, seq: m.seq, deliveries: delivery, err: errorMessage(err) }, `handler failed on the last of ${maxDeliver} deliveries: reading given up`);
        m.term(`handler failed ${delivery} times`);
      } else {
        this.opts.logger.warn({ subject: m.subject, seq: m.seq, delivery, err: errorMessage(err) }, "handler failed: nak, redelivered later");
        m.nak(this.opts.nakDelayMs ?? 1000);
      }
    }
  }

  /** The consumer's state on the server (shared by every worker of this queue). */
  async report(): Promise<ConsumerReport> {
    const stream = this.opts.stream ?? HUB_DEFAULTS.stream;
    const info = await (await jetstreamManager(this.nc)).consumers.info(stream, this.opts.queue);
    return { stream, consumer: this.opts.queue, numPending: info.num_pending, numAckPending: info.num_ack_pending, numRedelivered: info.num_redelivered, numWaiting: info.num_waiting };
  }

  /** Stops pulling; the reading in the handler finishes and is acked first. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.messages.stop();
    await this.done;
    // Acks are plain publishes: make sure they left before the caller closes the connection.
    if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A live (core, at-most-once) ingest worker: a queue subscription; handler errors are only counted. */
export class LiveIngestWorker implements AsyncDisposable {
  readonly counts: IngestCounts = { processed: 0, failed: 0, terminated: 0, redeliveries: 0 };
  readonly done: Promise<void>;
  private readonly sub: Subscription;

  constructor(nc: NatsConnection, opts: Pick<IngestOptions, "queue" | "filter" | "handler" | "logger">) {
    const sub = nc.subscribe(opts.filter ?? "sensors.>", { queue: opts.queue });
    this.sub = sub;
    this.done = (async () => {
      for await (const m of sub) {
        try {
          await opts.handler(toMessage(m));
          this.counts.processed++;
        } catch (err) {
          this.counts.failed++;
          opts.logger.warn({ subject: m.subject, err: errorMessage(err) }, "handler failed (live mode: the reading is not redelivered)");
        }
      }
    })();
  }

  async stop(): Promise<void> {
    await this.sub.drain().catch(() => this.sub.unsubscribe());
    await this.done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
