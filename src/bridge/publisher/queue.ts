/**
 * The publisher's memory: readings waiting to be sent, bounded and fair.
 *
 * - One FIFO per sensor; `take()` serves sensors round-robin, so one sensor's backlog does not
 *   hold back the others.
 * - A resend list in front of all of them: what was in flight when the leaf went away (or an
 *   ack timed out) goes out again first, in the order it was first sent — kept in order by
 *   construction (`resendFirst` prepends a batch that is itself in send order), never sorted.
 * - A capacity over everything held: when it is exceeded, the oldest reading of the sensor
 *   holding the most is dropped (a per-sensor quota that adapts to how many sensors wait), so a
 *   chatty sensor evicts its own backlog, not everyone's. The caller gives the dropped entry a
 *   seq, so a consumer sees the gap.
 */
import { Deque } from "../deque.js";
import type { Entry } from "./types.js";

interface SensorQueue {
  sensor: string;
  items: Deque<Entry>;
  inRing: boolean;
}

export class ReadingQueue {
  private readonly bySensor = new Map<string, SensorQueue>();
  /** Sensors with queued readings, in serving order. */
  private readonly ring = new Deque<SensorQueue>();
  private resend = new Deque<Entry>();
  /** Entries held (resend + sensor queues), excluding resend entries already acknowledged late. */
  private held = 0;
  private heaviest?: SensorQueue;

  constructor(private readonly capacity: number) {}

  /** Readings held (waiting for a first send or a resend). */
  get length(): number {
    return this.held;
  }

  /** Resend entries waiting. */
  get resending(): number {
    return this.resend.length;
  }

  /** Appends a new reading; returns what had to be dropped to stay within the capacity. */
  push(e: Entry): Entry | undefined {
    const q = this.queueOf(e.reading.sensor);
    q.items.push(e);
    this.held++;
    this.enterRing(q);
    if (!this.heaviest || q.items.length > this.heaviest.items.length) this.heaviest = q;
    return this.held > this.capacity ? this.dropOne(q) : undefined;
  }

  /** The next entry to send: resends first (in order), then the sensors round-robin. */
  take(): Entry | undefined {
    for (let e = this.resend.shift(); e; e = this.resend.shift()) {
      // Acknowledged late (after it was put back for a resend): already counted out of `held`.
      if (e.state === "done") continue;
      this.held--;
      return e;
    }
    for (let q = this.ring.shift(); q; q = this.ring.shift()) {
      const e = q.items.shift();
      if (q.items.length > 0) this.ring.push(q);
      else q.inRing = false;
      // A queue emptied by drops stays in the ring until it comes up.
      if (!e) continue;
      this.held--;
      return e;
    }
    return undefined;
  }

  /** Gives back an entry `take()` returned and that could not be sent yet: it keeps its place. */
  giveBack(e: Entry): void {
    this.held++;
    if (e.state === "resend") {
      this.resend.unshift(e);
      return;
    }
    const q = this.queueOf(e.reading.sensor);
    q.items.unshift(e);
    if (!q.inRing) {
      q.inRing = true;
      this.ring.unshift(q);
    }
  }

  /**
   * Puts `entries` (in the order they were sent) in front of everything, before any resend
   * still waiting: those were sent after these, so the order holds without sorting.
   */
  resendFirst(entries: Entry[]): void {
    if (entries.length === 0) return;
    const rest = this.resend.drain();
    const next = new Deque<Entry>();
    for (const e of entries) {
      e.state = "resend";
      next.push(e);
    }
    for (const e of rest) next.push(e);
    this.resend = next;
    this.held += entries.length;
  }

  /** A resend entry was acknowledged late (before it was sent again): it no longer counts. */
  settledWhileWaiting(e: Entry): void {
    if (e.state === "resend") this.held--;
  }

  /** The readings of `sensor` waiting for their first send, oldest first (do not change the queue meanwhile). */
  waiting(sensor: string): Iterable<Entry> {
    return this.bySensor.get(sensor)?.items ?? [];
  }

  /** Everything held, resends first, without removing it. */
  snapshot(): Entry[] {
    const out = [...this.resend].filter((e) => e.state !== "done");
    for (const q of this.bySensor.values()) out.push(...q.items);
    return out;
  }

  /** Removes and returns everything held (on close). */
  clear(): Entry[] {
    const out = this.resend.drain().filter((e) => e.state !== "done");
    for (const q of this.bySensor.values()) out.push(...q.items.drain());
    this.bySensor.clear();
    this.ring.drain();
    this.held = 0;
    this.heaviest = undefined;
    return out;
  }

  private queueOf(sensor: string): SensorQueue {
    let q = this.bySensor.get(sensor);
    if (!q) {
      q = { sensor, items: new Deque<Entry>(), inRing: false };
      this.bySensor.set(sensor, q);
    }
    return q;
  }

  private enterRing(q: SensorQueue): void {
    if (q.inRing) return;
    q.inRing = true;
    this.ring.push(q);
  }

  /**
   * Drops the oldest reading of the sensor holding the most (tracked lazily: the sensor last
   * seen at the top, or the pushing one if it holds as much). Resends are dropped only when
   * nothing else is held: they are the oldest, and may already be stored.
   */
  private dropOne(pushing: SensorQueue): Entry | undefined {
    let victim = this.heaviest && this.heaviest.items.length >= pushing.items.length ? this.heaviest : pushing;
    if (victim.items.length === 0) victim = pushing;
    let e = victim.items.shift();
    if (!e) {
      for (e = this.resend.shift(); e && e.state === "done"; e = this.resend.shift());
    }
    if (!e) return undefined;
    this.held--;
    return e;
  }
}
