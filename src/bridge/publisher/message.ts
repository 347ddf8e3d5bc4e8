/**
 * Message building (DESIGN A1, A2): the subject, the `Nats-Msg-Id` and the JSON body of a
 * reading, in one place. Nothing here knows about queues or connections.
 */
import { headers, type Match, type MsgHdrs } from "@nats-io/nats-core";
import type { Reading } from "../../drivers/types.js";
import { readingMsgId } from "../subjects.js";

/** The A2 message body: the driver's reading plus the device and its per-sensor seq. */
export type ReadingMessage = Reading & { device: string; seq: number };

/** The A2 body, built in the documented field order so the JSON reads as documented. */
export function readingMessage(device: string, r: Reading, seq: number): ReadingMessage {
  const m = { device, sensor: r.sensor, type: r.type, ts: r.ts } as ReadingMessage;
  if (r.values !== undefined) m.values = r.values;
  else m.value = r.value;
  if (r.unit !== undefined) m.unit = r.unit;
  if (r.units !== undefined) m.units = r.units;
  m.seq = seq;
  m.quality = r.quality;
  return m;
}

const encoder = new TextEncoder();

/** What goes on the wire for one reading with its seq: fixed at the first attempt, reused by every retry. */
export interface WireMessage {
  seq: number;
  msgId: string;
  body: Uint8Array;
  headers: MsgHdrs;
}

export function wireMessage(device: string, r: Reading, seq: number): WireMessage {
  const msgId = readingMsgId(device, r.sensor, seq);
  return { seq, msgId, body: encoder.encode(JSON.stringify(readingMessage(device, r, seq))), headers: new MsgIdHeaders(msgId) };
}

const MSG_ID = "Nats-Msg-Id";
const decoder = new TextDecoder();

/**
 * The headers of a reading: its `Nats-Msg-Id` alone, encoded once (issue 13). nats.js encodes a
 * message's headers on every publish (`encode()`), and `headers()` + `set()` build a Map and
 * check and canonicalise the key character by character: together ~17 % of what the daemon
 * allocated per reading. This holds the wire bytes (`NATS/1.0`, the header, a blank line), which
 * is all a publish reads; any other use (`get`, `set`, …) goes to a real `headers()` made on
 * first use, and from then on `encode()` follows it.
 */
export class MsgIdHeaders implements MsgHdrs {
  #bytes: Uint8Array;
  #real?: MsgHdrs;

  constructor(private readonly msgId: string) {
    this.#bytes = encoder.encode(`NATS/1.0\r\n${MSG_ID}: ${msgId}\r\n\r\n`);
  }

  /** What nats.js's `publish` sends. */
  encode(): Uint8Array {
    return this.#real ? encoder.encode(this.#real.toString()) : this.#bytes;
  }

  toString(): string {
    return this.#real ? this.#real.toString() : decoder.decode(this.#bytes);
  }

  private get real(): MsgHdrs {
    if (!this.#real) {
      this.#real = headers();
      this.#real.set(MSG_ID, this.msgId);
    }
    return this.#real;
  }

  get hasError(): boolean {
    return this.real.hasError;
  }
  get status(): string {
    return this.real.status;
  }
  get code(): number {
    return this.real.code;
  }
  get description(): string {
    return this.real.description;
  }
  get(k: string, match?: Match): string {
    return this.real.get(k, match);
  }
  set(k: string, v: string, match?: Match): void {
    this.real.set(k, v, match);
  }
  append(k: string, v: string, match?: Match): void {
    this.real.append(k, v, match);
  }
  has(k: string, match?: Match): boolean {
    return this.real.has(k, match);
  }
  keys(): string[] {
    return this.real.keys();
  }
  values(k: string, match?: Match): string[] {
    return this.real.values(k, match);
  }
  delete(k: string, match?: Match): void {
    this.real.delete(k, match);
  }
  last(k: string, match?: Match): string {
    return this.real.last(k, match);
  }
  [Symbol.iterator](): Iterator<[string, string[]]> {
    return this.real[Symbol.iterator]();
  }
}
