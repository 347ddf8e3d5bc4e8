/**
 * Message building (DESIGN A1, A2): the subject, the `Nats-Msg-Id` and the JSON body of a
 * reading, in one place. Nothing here knows about queues or connections.
 */
import { headers, type MsgHdrs } from "@nats-io/nats-core";
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
  const h = headers();
  h.set("Nats-Msg-Id", msgId);
  return { seq, msgId, body: encoder.encode(JSON.stringify(readingMessage(device, r, seq))), headers: h };
}
