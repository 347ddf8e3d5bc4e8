import { IntTable } from "../../util/int-table.js";
import { Deque } from "../deque.js";

/**
 * Deferred, ordered PUBACKs for QoS 1 messages (issue 18): MQTT.js may read the next message at
 * once, but the PUBACK of each message waits until its readings are stored (`settle(true)`), and
 * PUBACKs go out in the order the messages arrived (MQTT 3.1.1 §4.6). At most `limit` messages
 * wait for their PUBACK; beyond that MQTT.js is held (its `done` is not called), which stops
 * reading from the socket: back-pressure. The broker's own in-flight window (Mosquitto:
 * `max_inflight_messages`, 20 by default) usually binds first.
 *
 * A PUBACK of a connection that closed is never sent (the broker delivers the message again on
 * the next connection): `reset()` forgets them.
 */
interface Pending {
  id: number;
  /** Every reading of the message settled. */
  settled: boolean;
  /** False when one reading may still be stored later (the gateway stopped): no PUBACK then. */
  ok: boolean;
  /** Sends the PUBACK MQTT.js built for the message (set once MQTT.js asked to send it). */
  send?: () => void;
  dead: boolean;
}

export class DeferredPubacks {
  private readonly order = new Deque<Pending>();
  /** By packet id. Not a `Map`: see IntTable. */
  private readonly byId = new IntTable<Pending>();
  private blocked: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** Messages whose PUBACK is held. */
  get waiting(): number {
    return this.order.length;
  }

  /**
   * Registers QoS 1 message `id` (before MQTT.js is told it was handled). Call `settle` once,
   * when every reading of it was stored or never will be (`true`), or may still be (`false`).
   */
  expect(id: number): (ok: boolean) => void {
    const p: Pending = { id, settled: false, ok: true, dead: false };
    this.order.push(p);
    this.byId.set(id, p);
    return (ok) => {
      if (p.settled || p.dead) return;
      p.settled = true;
      p.ok = ok;
      this.flush();
    };
  }

  /**
   * MQTT.js wants to send the PUBACK of `id`: true when it is held here (`send` later), false
   * when the message is not one of ours (send it now).
   */
  take(id: number, send: () => void): boolean {
    const p = this.byId.get(id);
    if (!p) return false;
    this.byId.delete(id);
    p.send = send;
    this.flush();
    return true;
  }

  /** Lets MQTT.js read the next message: at once, or once fewer than `limit` PUBACKs wait. */
  proceed(done: () => void): void {
    if (this.order.length <= this.limit) done();
    else this.blocked.push(done);
  }

  /** The connection closed: its held PUBACKs can never be sent. */
  reset(): void {
    for (const p of this.order.drain()) p.dead = true;
    this.byId.clear();
    this.blocked = [];
  }

  private flush(): void {
    for (let p = this.order.peek(); p; p = this.order.peek()) {
      if (!p.settled || (p.ok && !p.send)) break;
      this.order.shift();
      if (p.ok) p.send!();
    }
    while (this.blocked.length > 0 && this.order.length <= this.limit) this.blocked.shift()!();
  }
}
