/**
 * PubAck tracking without a request per publish (issue 13): every reading is a core publish with
 * a reply subject on ONE wildcard inbox subscription (`<prefix>.<nuid>.*`), the way nats.go's
 * PublishAsync works. Acks are matched by the reply token, parsed here, and one timer watches
 * the oldest publish in flight. No Error object, promise or timer per publish.
 */
import { nuid, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { IntTable } from "../../util/int-table.js";
import { Deque } from "../deque.js";
import type { Entry } from "./types.js";

/** A parsed answer of the stream to one publish. */
export type PubAck =
  | { ok: true; stream: string; seq: number; duplicate: boolean }
  /** `retry`: the stream was unavailable (no responders, 503): the same publish may succeed later. */
  | { ok: false; retry: boolean; code: number; errCode?: number; description: string };

const decoder = new TextDecoder();

interface PubAckJson {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; err_code?: number; description?: string };
}

/** Reads a PubAck (`{"stream":…,"seq":…,"duplicate":true}`), a JetStream error (`{"error":{…}}`) or a no-responders status. */
export function parsePubAck(m: Msg): PubAck {
  if (m.data.length === 0) {
    const code = m.headers?.code ?? 0;
    return { ok: false, retry: true, code: code || 503, description: m.headers?.description || "no responders: no stream captures the subject" };
  }
  let j: PubAckJson;
  try {
    j = JSON.parse(decoder.decode(m.data)) as PubAckJson;
  } catch {
    return { ok: false, retry: true, code: 0, description: `unreadable PubAck: ${decoder.decode(m.data).slice(0, 200)}` };
  }
  if (j.error) {
    const code = j.error.code ?? 0;
    return { ok: false, retry: code === 503, code, errCode: j.error.err_code, description: j.error.description ?? "unknown JetStream error" };
  }
  if (typeof j.stream !== "string" || typeof j.seq !== "number") return { ok: false, retry: true, code: 0, description: "invalid PubAck" };
  return { ok: true, stream: j.stream, seq: j.seq, duplicate: j.duplicate === true };
}

/** Ack timeouts: a loopback leaf answers in well under a millisecond; a silent one is dead or stopped. */
export const LOOPBACK_ACK_TIMEOUT_MS = 2000;
export const REMOTE_ACK_TIMEOUT_MS = 5000;

/** True for `127.x.x.x`, `::1` and `localhost` (with or without a port). */
export function isLoopback(hostPort: string): boolean {
  const host = hostPort.replace(/^\[?([^\]]*?)\]?(:\d+)?$/, "$1");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

export interface AckHandlers {
  /** An answer for `e` (still registered: call `settle(e)` unless it is to be retried). */
  onAck(e: Entry, ack: PubAck): void;
  /** The oldest publish in flight got no answer within the timeout. */
  onTimeout(): void;
}

export class AckTracker {
  private sub?: Subscription;
  private prefix = "";
  private nextToken = 1;
  /** By reply token. Not a `Map`: see IntTable (a Map here promoted every reading after the first full GC). */
  private readonly awaiting = new IntTable<Entry>();
  /** Sends in order; entries no longer in flight are skipped lazily. */
  private flight = new Deque<Entry>();
  private timer?: NodeJS.Timeout;
  /** Publishes sent and not yet answered (nor put back for a resend). */
  inFlight = 0;

  constructor(
    private readonly handlers: AckHandlers,
    private timeoutMs: number,
  ) {}

  set timeout(ms: number) {
    this.timeoutMs = ms;
  }

  /** Subscribes the inbox on `nc` (the subscription survives reconnects). */
  attach(nc: NatsConnection, inboxPrefix: string): void {
    this.sub?.unsubscribe();
    this.prefix = `${inboxPrefix}.${nuid.next()}.`;
    const skip = this.prefix.length;
    this.sub = nc.subscribe(`${this.prefix}*`, {
      callback: (err, m) => {
        if (err) return;
        const e = this.awaiting.get(Number(m.subject.slice(skip)));
        if (!e) return;
        this.handlers.onAck(e, parsePubAck(m));
        this.trim();
      },
    });
  }

  /** Publishes `e` (its wire message set) with its reply token. Throws what `nc.publish` throws. */
  send(nc: NatsConnection, e: Entry): void {
    if (e.token === 0) {
      e.token = this.nextToken++;
      this.awaiting.set(e.token, e);
    }
    e.attempts++;
    e.state = "inflight";
    e.sentAt = performance.now();
    this.inFlight++;
    this.flight.push(e);
    this.arm();
    nc.publish(e.subject, e.wire!.body, { reply: this.prefix + e.token, headers: e.wire!.headers });
  }

  /** `e` needs no answer any more (answered, rejected, dropped). */
  settle(e: Entry): void {
    if (e.token !== 0) {
      this.awaiting.delete(e.token);
      e.token = 0;
    }
    if (e.state === "inflight") this.inFlight--;
  }

  /**
   * Everything in flight, in the order it was sent, now counted as waiting for a resend. Their
   * tokens stay valid: a late answer to an earlier attempt still settles them.
   */
  takeInFlight(): Entry[] {
    const out: Entry[] = [];
    for (const e of this.flight.drain()) {
      if (e.state !== "inflight") continue;
      e.state = "resend";
      out.push(e);
    }
    this.inFlight = 0;
    return out;
  }

  /** The entries in flight now, in the order they were sent (a copy; nothing changes). */
  inFlightEntries(): Entry[] {
    return this.awaiting.values().filter((e) => e.state === "inflight");
  }

  /** Entries awaiting an answer (in flight or waiting for a resend). */
  get awaitingCount(): number {
    return this.awaiting.size;
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), Math.max(25, this.timeoutMs >> 2));
    this.timer.unref();
  }

  /**
   * Drops answered entries from the front of the send order at once, not only at the next
   * timeout check: held there for the check's 0.5 s, every entry with its wire message outlived
   * a young-generation GC and was promoted, which doubled the old generation at 1k readings/s
   * (issue 13: 8 -> 16 MiB).
   */
  private trim(): Entry | undefined {
    let head = this.flight.peek();
    while (head && head.state !== "inflight") {
      this.flight.shift();
      head = this.flight.peek();
    }
    return head;
  }

  private check(): void {
    const head = this.trim();
    if (!head) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    if (performance.now() - head.sentAt > this.timeoutMs) this.handlers.onTimeout();
  }
}
