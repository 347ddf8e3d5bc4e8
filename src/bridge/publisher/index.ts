/**
 * The publisher: hands readings to the local leaf's JetStream (DESIGN A2, A3, Part B).
 *
 * The way of a reading: `accept` (seq from the seq store's durable block) → `queue` (bounded,
 * fair per sensor) → `pump` (message built once by `message`, core publish with a reply token)
 * → `acks` (one inbox subscription, one timer) → the reading's `onStored`. `leaf-stream` creates
 * and aligns the stream.
 *
 * Guarantees:
 * - An accepted reading is stored in the leaf stream, or counted (per sensor) as dropped,
 *   rate-limited or rejected; a queue drop uses up the reading's seq, so consumers see the gap.
 * - A reading gets its seq when accepted, so one lost from memory (the process killed before
 *   the leaf stored it) leaves a gap a consumer sees, not nothing. Only a reading accepted while
 *   its sensor's block is not on disk yet (seconds after a start, or while the state directory
 *   cannot be written) or its floor unknown (a new sensor while the leaf is down) waits for its
 *   seq; those are numbered in order as soon as the block is there.
 * - A reading's seq and `Nats-Msg-Id` are fixed at its first send and kept for every resend, so
 *   a reading the stream already stored is deduplicated, never stored twice under a new id.
 * - Seqs are never reused, across crashes too (see `SeqStore`); a reused msg id found by the
 *   stream (a duplicate on a first attempt) is a counted collision, resent under a fresh seq.
 * - Per sensor, readings go out in order; what was in flight when the leaf went away goes out
 *   again first, at once on reconnect.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { HeldReading } from "../held-store.js";
import type { Reading } from "../../drivers/types.js";
import { Pump } from "./pump.js";
import { ReadingQueue } from "./queue.js";
import { readingSubject } from "../subjects.js";
import type { Counters, Entry, LossReport, PublisherOptions, PublisherStats, SensorLoss, StoredCallback, StoredResult } from "./types.js";

export { deviceReadingsFilter, readingMsgId, readingSubject } from "../subjects.js";
export { readingMessage, type ReadingMessage } from "./message.js";
export { parsePubAck, type PubAck } from "./acks.js";
export type { LossReport, PublisherOptions, PublisherStats, SensorLoss, StoredCallback, StoredResult } from "./types.js";

export class Publisher implements AsyncDisposable {
  private readonly opts: PublisherOptions;
  private readonly queue: ReadingQueue;
  private readonly pump: Pump;
  private readonly counters: Counters = { accepted: 0, published: 0, duplicates: 0, dropped: 0, rateLimited: 0, retries: 0, rejected: 0, collisions: 0 };
  private readonly losses = new Map<string, SensorLoss>();
  private pendingLoss = new Map<string, SensorLoss>();
  private lossSince = performance.now();
  private lossTimer?: NodeJS.Timeout;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly rateCaps = new Map<string, number>();
  /** Per sensor, queued readings still without a seq (see `number`). */
  private readonly lateSeqs = new Map<string, number>();
  private closed = false;
  private leftAtClose: Entry[] = [];
  private idleWaiters: (() => void)[] = [];
  private lastDropLog = -Infinity;

  constructor(opts: PublisherOptions) {
    this.opts = opts;
    this.queue = new ReadingQueue(opts.queueSize);
    this.pump = new Pump({
      opts,
      queue: this.queue,
      seqs: opts.seqs,
      counters: this.counters,
      logger: opts.logger,
      loss: (sensor, kind) => this.loss(sensor, kind),
      idle: () => this.notifyIdle(),
      numbered: (e) => this.numbered(e),
      lateSensors: () => this.lateSeqs.keys(),
    });
    if (opts.onLoss) {
      this.lossTimer = setInterval(() => this.reportLoss(), opts.lossReportMs ?? 10_000);
      this.lossTimer.unref();
    }
  }

  get stats(): PublisherStats {
    return { ...this.counters, queued: this.closed ? this.leftAtClose.length : this.queue.length, inFlight: this.pump.inFlight };
  }

  /**
   * Caps what `sensor` may hand in per second (token bucket, burst = 1 s of it); `undefined`
   * goes back to `maxRatePerSensor`. For push sources (GPIO inputs, MQTT topics) that a chatty
   * device could flood; readings over the cap are counted as `rateLimited`.
   */
  setRateCap(sensor: string, perSecond: number | undefined): void {
    if (perSecond === undefined) this.rateCaps.delete(sensor);
    else this.rateCaps.set(sensor, perSecond);
    this.buckets.delete(sensor);
  }

  /** Per sensor, what was not stored and why (cumulative; only sensors with a loss). */
  sensorLosses(): ReadonlyMap<string, Readonly<SensorLoss>> {
    return this.losses;
  }

  /** True while the connection to the local leaf is up (the stream may not be ready yet). */
  get leafConnected(): boolean {
    return this.pump.connected;
  }

  /** True when connected to the leaf and the stream is known to exist. */
  get healthy(): boolean {
    return this.pump.connected && this.pump.streamReady;
  }

  /**
   * Starts publishing over `nc` (the local leaf connection, with unlimited reconnects).
   * Readings accepted before this are queued and go out once the stream is ready.
   */
  attach(nc: NatsConnection): void {
    this.pump.attach(nc);
  }

  /**
   * Queues a reading. Never throws, never blocks. `onStored`, if given, is called exactly once:
   * `{stored: true, seq}` once the leaf stream acknowledged the reading (its PubAck), or
   * `{stored: false, reason}` when it never will be (dropped, rate-limited, rejected, or still
   * held when the publisher closed). A source that must not lose what it took (MQTT QoS 1)
   * acknowledges its broker in `onStored`, not on `accept`.
   */
  accept(reading: Reading, onStored?: StoredCallback): void {
    if (this.closed) {
      // Only after close() (shutdown): nothing can publish it any more.
      this.counters.dropped++;
      this.loss(reading.sensor, "dropped");
      onStored?.({ stored: false, reason: "closed" });
      return;
    }
    this.counters.accepted++;
    const cap = this.rateCaps.size > 0 ? (this.rateCaps.get(reading.sensor) ?? this.opts.maxRatePerSensor) : this.opts.maxRatePerSensor;
    if (cap !== undefined && !this.withinRate(reading.sensor, cap)) {
      this.counters.rateLimited++;
      this.loss(reading.sensor, "rateLimited");
      onStored?.({ stored: false, reason: "rate-limited" });
      return;
    }
    const e: Entry = {
      reading,
      subject: readingSubject(reading.type, this.opts.region, this.opts.deviceId, reading.sensor),
      // Every field from the start (seq and wire come later): one object shape, no property
      // store added per reading.
      seq: undefined,
      lateSeq: false,
      wire: undefined,
      attempts: 0,
      token: 0,
      state: "queued",
      sentAt: 0,
      onStored,
    };
    this.number(e);
    const dropped = this.queue.push(e);
    if (dropped) this.drop(dropped);
    this.pump.kick();
  }

  /**
   * What the publisher holds now (in flight, then waiting; after `close()`, what it still held
   * then), with the seqs already given: to persist before a stop or restart that would lose it.
   */
  held(): HeldReading[] {
    const entries = this.closed ? this.leftAtClose : [...this.pump.acks.inFlightEntries(), ...this.queue.snapshot()];
    return entries.map((e) => (e.seq === undefined ? { reading: e.reading } : { reading: e.reading, seq: e.seq }));
  }

  /**
   * Queues readings held at the last stop (see `held()`), before anything newer, under the seqs
   * they had (so a copy the leaf already stored is deduplicated). Not rate-capped. `onSettled`
   * is called once every one of them was stored or counted as lost (at once when there are none).
   * Call it before any reading is accepted.
   */
  restore(items: readonly HeldReading[], onSettled: () => void): void {
    let left = items.length;
    if (left === 0) return onSettled();
    const settled = () => {
      if (--left === 0) onSettled();
    };
    // Not counted as accepted: the process that took them counted them.
    for (const h of items) {
      if (this.closed) return;
      const e: Entry = {
        reading: h.reading,
        subject: readingSubject(h.reading.type, this.opts.region, this.opts.deviceId, h.reading.sensor),
        seq: h.seq,
        lateSeq: false,
        wire: undefined,
        attempts: 0,
        token: 0,
        state: "queued",
        sentAt: 0,
        onStored: (r) => {
          // Still held at close: it goes into the next file; only a final fate settles it.
          if (r.stored || r.reason !== "closed") settled();
        },
      };
      if (h.seq === undefined) this.number(e);
      const dropped = this.queue.push(e);
      if (dropped) this.drop(dropped);
    }
    this.pump.drain();
  }

  /** `accept` as a promise: resolves (never rejects) with the reading's fate. */
  acceptStored(reading: Reading): Promise<StoredResult> {
    return new Promise((resolve) => this.accept(reading, resolve));
  }

  /** Resolves true once everything accepted so far is acknowledged, false at the deadline. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.queue.length + this.pump.inFlight > 0) {
      const left = deadline - performance.now();
      if (left <= 0 || this.closed) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return true;
  }

  /** Stops accepting and publishing; what is still held is lost (call flush first). Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.lossTimer);
    const inFlight = this.pump.close();
    this.queue.resendFirst(inFlight);
    const left = this.queue.clear();
    this.leftAtClose = left;
    for (const e of left) e.onStored?.({ stored: false, reason: "closed", seq: e.seq });
    this.reportLoss();
    this.notifyIdle();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Gives a new reading its seq now, from the durable block. Per sensor, seqs follow the order
   * of acceptance: while earlier readings still wait for theirs, this one waits too, unless the
   * block is on disk again, when the waiting ones are numbered first, oldest first.
   */
  private number(e: Entry): void {
    const sensor = e.reading.sensor;
    const seqs = this.opts.seqs;
    if (this.lateSeqs.has(sensor) && seqs.hasRoom(sensor)) {
      for (const w of this.queue.waiting(sensor)) {
        if (!w.lateSeq) continue;
        const seq = seqs.next(sensor);
        if (seq === undefined) break;
        w.seq = seq;
        this.numbered(w);
      }
    }
    if (!this.lateSeqs.has(sensor) && !seqs.needsFloor(sensor)) {
      const seq = seqs.next(sensor);
      if (seq !== undefined) {
        e.seq = seq;
        return;
      }
    }
    e.lateSeq = true;
    this.lateSeqs.set(sensor, (this.lateSeqs.get(sensor) ?? 0) + 1);
  }

  /** A reading accepted without a seq got one (from the pump, `number`, or a drop). */
  private numbered(e: Entry): void {
    if (!e.lateSeq) return;
    e.lateSeq = false;
    const sensor = e.reading.sensor;
    const n = (this.lateSeqs.get(sensor) ?? 1) - 1;
    if (n > 0) this.lateSeqs.set(sensor, n);
    else this.lateSeqs.delete(sensor);
  }

  private withinRate(sensor: string, perSecond: number): boolean {
    const now = performance.now();
    let b = this.buckets.get(sensor);
    if (!b) {
      b = { tokens: perSecond, at: now };
      this.buckets.set(sensor, b);
    }
    b.tokens = Math.min(perSecond, b.tokens + ((now - b.at) * perSecond) / 1000);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** A reading the full queue gave up: it uses up its seq (a gap the consumer sees) and is counted. */
  private drop(e: Entry): void {
    const sensor = e.reading.sensor;
    this.pump.acks.settle(e);
    if (e.seq === undefined) {
      e.seq = this.opts.seqs.skip(sensor);
      this.numbered(e);
    }
    const seq = e.seq;
    e.state = "done";
    this.counters.dropped++;
    this.loss(sensor, "dropped");
    e.onStored?.({ stored: false, reason: "dropped", seq });
    const now = performance.now();
    if (now - this.lastDropLog > 10_000) {
      this.lastDropLog = now;
      this.opts.logger.warn({ dropped: this.counters.dropped, queueSize: this.opts.queueSize, sensor }, "publish queue full: dropping the oldest readings of the sensor holding the most");
    }
  }

  private loss(sensor: string, kind: keyof SensorLoss): void {
    for (const m of [this.losses, this.pendingLoss]) {
      let l = m.get(sensor);
      if (!l) {
        l = { dropped: 0, rateLimited: 0, rejected: 0, collisions: 0 };
        m.set(sensor, l);
      }
      l[kind]++;
    }
  }

  private reportLoss(): void {
    const now = performance.now();
    if (this.pendingLoss.size === 0 || !this.opts.onLoss) return;
    const report: LossReport = { sinceMs: Math.round(now - this.lossSince), sensors: Object.fromEntries(this.pendingLoss) };
    this.pendingLoss = new Map();
    this.lossSince = now;
    try {
      this.opts.onLoss(report);
    } catch (err) {
      this.opts.logger.warn({ err }, "onLoss handler failed");
    }
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
