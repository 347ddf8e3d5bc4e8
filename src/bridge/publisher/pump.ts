/**
 * The pump: moves readings from the queue to the leaf stream and reads the answers.
 * (Just over 300 lines, one job: the send/answer/retry state machine, kept in one place.)
 *
 * - Sends synchronously (no promise per reading): on every accepted reading and every PubAck,
 *   as long as fewer than `maxInFlight` await an answer. The message is built at the first send
 *   from the seq the reading got when accepted; one accepted without a seq (block not on disk
 *   yet, floor unknown) is numbered here. Readiness (connected, stream checked, a sensor's seq
 *   floor, a seq block on disk, a backoff) is one async step at a time, during which sending
 *   pauses, so order is kept.
 * - When the leaf goes away (disconnect), an ack times out, or the stream is unavailable,
 *   everything in flight goes back in front of the queue in send order and is sent again with
 *   the same msg ids, at once after a reconnect and before any newer reading.
 * - A "duplicate" PubAck on a reading's first attempt means its msg id was used before (a seq
 *   reused): the reading is sent again under a fresh seq and the collision is counted.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { backoff } from "../../util/backoff.js";
import { errorMessage } from "../../errors.js";
import { AckTracker, isLoopback, LOOPBACK_ACK_TIMEOUT_MS, REMOTE_ACK_TIMEOUT_MS, type PubAck } from "./acks.js";
import { LeafStream } from "./leaf-stream.js";
import { wireMessage } from "./message.js";
import type { Logger } from "../../logger.js";
import type { SeqStore } from "../seq-store.js";
import type { ReadingQueue } from "./queue.js";
import type { Counters, Entry, PublisherOptions, SensorLoss } from "./types.js";

/** What the pump works with. */
export interface PumpDeps {
  opts: PublisherOptions;
  queue: ReadingQueue;
  seqs: SeqStore;
  counters: Counters;
  logger: Logger;
  /** A reading of `sensor` was not stored (or needed a new seq), for the per-sensor counts. */
  loss(sensor: string, kind: keyof SensorLoss): void;
  /** Nothing queued, nothing in flight. */
  idle(): void;
  /** `e`, accepted without a seq, got one now. */
  numbered(e: Entry): void;
  /** Sensors with readings still waiting for a seq (their floor or block is not there yet). */
  lateSensors(): Iterable<string>;
}

export class Pump {
  readonly acks: AckTracker;
  private nc?: NatsConnection;
  private stream?: LeafStream;
  connected = false;
  streamReady = false;
  private streamEmpty = false;
  private closed = false;
  private failures = 0;
  private loopback = false;
  private backoffUntil = 0;
  /** An async readiness step runs: sending pauses. */
  private preparing?: Promise<void>;
  private needFloor?: string;
  private needBlock = false;
  private draining = false;
  private kicked = false;
  private wake?: () => void;
  private lastLog = new Map<string, number>();

  constructor(private readonly d: PumpDeps) {
    this.acks = new AckTracker({ onAck: (e, ack) => this.onAck(e, ack), onTimeout: () => this.onTimeout() }, d.opts.ackTimeoutMs ?? REMOTE_ACK_TIMEOUT_MS);
  }

  get inFlight(): number {
    return this.acks.inFlight;
  }

  attach(nc: NatsConnection): void {
    if (this.nc && this.nc !== nc) this.requeueInFlight();
    this.nc = nc;
    const o = this.d.opts;
    const loopback = isLoopback(nc.getServer());
    this.loopback = loopback;
    const ackTimeoutMs = o.ackTimeoutMs ?? (loopback ? LOOPBACK_ACK_TIMEOUT_MS : REMOTE_ACK_TIMEOUT_MS);
    this.acks.timeout = ackTimeoutMs;
    // JetStream API calls (stream info, the seq floor) may take longer than a PubAck on a busy leaf.
    // A local leaf answers in milliseconds; a request sent while its JetStream was still starting
    // may never be answered, and waiting 5 s for it keeps readings in memory that long (seen in
    // the chaos runs). So 1.5 s on loopback (then the retry, at most 1 s later), 5 s otherwise.
    const apiTimeoutMs = loopback && o.ackTimeoutMs === undefined ? 1500 : Math.max(ackTimeoutMs, REMOTE_ACK_TIMEOUT_MS);
    this.stream = new LeafStream(nc, { deviceId: o.deviceId, stream: o.stream, maxBytes: o.maxBytes, maxAgeMs: o.maxAgeMs, duplicateWindowMs: o.duplicateWindowMs, timeoutMs: apiTimeoutMs, logger: this.d.logger });
    this.acks.attach(nc, o.inboxPrefix ?? (nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix ?? "_INBOX");
    this.connected = !nc.isClosed();
    this.streamReady = false;
    this.watchStatus(nc).catch((err: unknown) => this.d.logger.error({ err: errorMessage(err) }, "connection status watcher failed"));
    this.prepare();
  }

  /**
   * Drains once, later in this turn of the event loop (its check phase): the readings accepted
   * in one turn (sensors on one tick, a socket chunk of MQTT messages) go out in one socket write
   * instead of one write each (issue 13: a third of the CPU at 1k readings/s was writes).
   */
  kick(): void {
    if (this.kicked || this.closed) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      this.drain();
    });
  }

  /** Sends what it can now; cheap when there is nothing to do. */
  drain(): void {
    if (this.draining || this.preparing || !this.connected || !this.streamReady || this.closed) return;
    const nc = this.nc!;
    const { queue, seqs } = this.d;
    const max = this.d.opts.maxInFlight;
    this.draining = true;
    try {
      while (this.acks.inFlight < max) {
        const e = queue.take();
        if (!e) break;
        if (!e.wire) {
          if (e.seq === undefined) {
            // Accepted before its sensor's seq block was on disk (or its floor known): number it now.
            const sensor = e.reading.sensor;
            if (seqs.needsFloor(sensor) && this.streamEmpty) seqs.floor(sensor, undefined);
            if (seqs.needsFloor(sensor)) {
              queue.giveBack(e);
              this.needFloor = sensor;
              this.prepare();
              break;
            }
            const seq = seqs.next(sensor);
            if (seq === undefined) {
              queue.giveBack(e);
              this.needBlock = true;
              this.prepare();
              break;
            }
            e.seq = seq;
            this.d.numbered(e);
          }
          e.wire = wireMessage(this.d.opts.deviceId, e.reading, e.seq);
        }
        if (e.attempts > 0) this.d.counters.retries++;
        try {
          this.acks.send(nc, e);
        } catch (err) {
          // Closed or draining connection: nothing more can go out on it.
          this.logOnce("send", "warn", { err: errorMessage(err) }, "cannot publish on the leaf connection; holding readings");
          this.connected = !nc.isClosed();
          this.requeueInFlight();
          break;
        }
      }
    } finally {
      this.draining = false;
    }
    if (this.acks.inFlight === 0 && queue.length === 0) this.d.idle();
  }

  /** Stops sending; what is in flight is given back to the queue. */
  close(): Entry[] {
    this.closed = true;
    this.wakeUp();
    const back = this.acks.takeInFlight();
    this.acks.close();
    return back;
  }

  private onAck(e: Entry, ack: PubAck): void {
    const { counters, queue } = this.d;
    if (!ack.ok && ack.retry) {
      // The stream is unavailable (no responders: the leaf lost it, or JetStream is not up yet).
      // One such answer is enough to hold everything; the others find their entries put back.
      if (e.state !== "inflight") return;
      this.logOnce("unavailable", "warn", { code: ack.code, err: ack.description }, "leaf stream unavailable; will resend what is in flight");
      this.streamReady = false;
      this.requeueInFlight();
      this.failures++;
      this.backoffUntil = performance.now() + this.backoffMs();
      this.prepare();
      return;
    }
    if (e.state === "done") return;
    const waiting = e.state === "resend";
    this.acks.settle(e);
    const sensor = e.reading.sensor;
    if (ack.ok && ack.duplicate && e.attempts === 1) {
      // Nobody sent this msg id before in this process: another reading holds it (a reused seq).
      counters.collisions++;
      this.d.loss(sensor, "collisions");
      this.logOnce(`collision:${sensor}`, "error", { sensor, msgId: e.wire?.msgId, collisions: counters.collisions }, "msg id already in the leaf stream on a first attempt (a reused seq): sending the reading again under a fresh seq");
      e.wire = undefined;
      e.seq = undefined;
      e.attempts = 0;
      // Already waiting for a resend (a late answer): it keeps its place there.
      if (!waiting) queue.resendFirst([e]);
      this.drain();
      return;
    }
    queue.settledWhileWaiting(e);
    e.state = "done";
    if (!ack.ok) {
      // The stream answered "no" (e.g. message too large): retrying gets the same answer.
      counters.rejected++;
      this.d.loss(sensor, "rejected");
      this.d.logger.error({ err: ack.description, code: ack.code, errCode: ack.errCode, subject: e.subject, msgId: e.wire?.msgId }, "the leaf stream refused a reading; dropping it");
      e.onStored?.({ stored: false, reason: "rejected", seq: e.wire?.seq });
    } else {
      counters.published++;
      if (ack.duplicate) counters.duplicates++;
      this.failures = 0;
      e.onStored?.({ stored: true, seq: e.wire!.seq, duplicate: ack.duplicate });
    }
    this.drain();
  }

  private onTimeout(): void {
    if (this.acks.inFlight === 0 || this.preparing) return;
    this.logOnce("timeout", "warn", { inFlight: this.acks.inFlight, timeoutMs: this.d.opts.ackTimeoutMs }, "no PubAck from the leaf in time; resending what is in flight (same msg ids)");
    this.requeueInFlight();
    this.failures++;
    this.backoffUntil = performance.now() + this.backoffMs();
    this.prepare();
  }

  private requeueInFlight(): void {
    this.d.queue.resendFirst(this.acks.takeInFlight());
  }

  /**
   * Between retries of an unavailable stream: 250 ms doubling, at most 1 s for a leaf on
   * loopback (asking a local server once a second is nothing, and every second waited is a
   * second of readings only in memory), 5 s for a remote one.
   */
  private backoffMs(): number {
    return backoff(this.failures - 1, 250, this.loopback ? 1000 : 5000);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.nc !== nc) return;
      if (s.type === "disconnect") {
        this.connected = false;
        // Whatever was in flight may never have reached the leaf: resend it first on reconnect.
        this.requeueInFlight();
        this.d.logger.warn({ server: s.server, held: this.d.queue.length }, "local leaf unreachable: queueing readings");
        this.wakeUp();
      } else if (s.type === "reconnect") {
        this.connected = true;
        // The leaf may have been recreated empty: check the stream again before publishing.
        this.streamReady = false;
        this.backoffUntil = 0;
        this.failures = 0;
        this.d.logger.info({ server: s.server, held: this.d.queue.length }, "local leaf reachable again; resending what was in flight first");
        this.prepare();
        this.wakeUp();
      }
    }
    if (this.nc === nc) this.connected = false;
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private sleepOrWake(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Runs the readiness steps (one at a time), then drains. Sending pauses meanwhile. */
  private prepare(): void {
    if (this.preparing || this.closed) return;
    this.preparing = this.ready()
      .catch((err: unknown) => this.d.logger.error({ err: errorMessage(err) }, "publisher readiness step failed"))
      .finally(() => {
        this.preparing = undefined;
        this.drain();
      });
  }

  private async ready(): Promise<void> {
    const { seqs } = this.d;
    while (!this.closed) {
      if (!this.connected) {
        await this.sleepOrWake(1000);
        continue;
      }
      const wait = this.backoffUntil - performance.now();
      if (wait > 0) {
        await this.sleepOrWake(wait);
        continue;
      }
      if (!this.streamReady) {
        try {
          // An empty stream holds no seq to floor on: no lookup per sensor then.
          this.streamEmpty = (await this.stream!.ensure()).messages === 0;
          this.streamReady = true;
        } catch (err) {
          this.fail(err, "leaf stream not ready; retrying");
          continue;
        }
      }
      const sensor = this.needFloor;
      if (sensor !== undefined) {
        // Every sensor still waiting for its floor at once (at a start, all of them), not one
        // lookup per drain: a start with 50 sensors asks the local leaf 50 times in parallel.
        const need = new Set([sensor, ...[...this.d.lateSensors()].filter((s) => seqs.needsFloor(s))]);
        try {
          const floors = await Promise.all([...need].map(async (s) => [s, await this.stream!.lastStoredSeq(s)] as const));
          for (const [s, seq] of floors) seqs.floor(s, seq);
          this.needFloor = undefined;
        } catch (err) {
          this.fail(err, "cannot look up the last stored seq; retrying", { sensor });
          continue;
        }
      }
      if (this.needBlock) {
        this.needBlock = false;
        // Every sensor whose readings wait for a seq asks for its block now, so one write (not
        // one per sensor, one after the other) makes them all durable.
        for (const s of this.d.lateSensors()) {
          if (seqs.needsFloor(s) && this.streamEmpty) seqs.floor(s, undefined);
          if (!seqs.needsFloor(s)) seqs.want(s);
        }
        await seqs.reserved();
        if (seqs.failing) {
          // The reservation could not be written (logged by the store): try again later.
          this.failures++;
          this.backoffUntil = performance.now() + this.backoffMs();
          continue;
        }
      }
      return;
    }
  }

  private fail(err: unknown, msg: string, extra: Record<string, unknown> = {}): void {
    this.failures++;
    if (this.failures === 1 || this.failures % 20 === 0) this.d.logger.warn({ err: errorMessage(err), attempt: this.failures, ...extra }, msg);
    this.backoffUntil = performance.now() + this.backoffMs();
  }

  /** Logs at most once every 10 s per key. */
  private logOnce(key: string, level: "warn" | "error", obj: Record<string, unknown>, msg: string): void {
    const now = performance.now();
    if (now - (this.lastLog.get(key) ?? -Infinity) < 10_000) return;
    this.lastLog.set(key, now);
    if (this.lastLog.size > 1000) this.lastLog.clear();
    this.d.logger[level](obj, msg);
  }
}
