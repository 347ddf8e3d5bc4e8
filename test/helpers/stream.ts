import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { ReadingMessage } from "../../src/bridge/publisher.js";

export interface StoredReading {
  subject: string;
  msgId: string | undefined;
  body: ReadingMessage;
}

/** Every message in `stream` (via direct get by sequence), for assertions. */
export async function readStream(nc: NatsConnection, stream: string, opts: { domain?: string } = {}): Promise<StoredReading[]> {
  const jsm: JetStreamManager = await jetstreamManager(nc, opts.domain ? { domain: opts.domain } : {});
  const info = await jsm.streams.info(stream);
  const out: StoredReading[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (!m) continue;
    out.push({ subject: m.subject, msgId: m.header?.get("Nats-Msg-Id"), body: m.json<ReadingMessage>() });
  }
  return out;
}

/** Stream message count, or 0 when the stream does not exist yet. */
export async function streamCount(nc: NatsConnection, stream: string, opts: { domain?: string } = {}): Promise<number> {
  const jsm = await jetstreamManager(nc, opts.domain ? { domain: opts.domain } : {});
  try {
    return (await jsm.streams.info(stream)).state.messages;
  } catch {
    return 0;
  }
}

/**
 * Checks the delivery guarantees on a set of stored readings: per sensor, seqs are contiguous
 * (from the first seen), no msg id repeats, and each msg id matches `<device>.<sensor>.<seq>`.
 * Returns the problems found (empty = fine) and the per-sensor seq ranges.
 */
export function checkSequences(readings: StoredReading[]): { problems: string[]; ranges: Map<string, { first: number; last: number; count: number }> } {
  const problems: string[] = [];
  const ids = new Set<string>();
  const bySensor = new Map<string, number[]>();
  for (const r of readings) {
    const want = `${r.body.device}.${r.body.sensor}.${r.body.seq}`;
    if (r.msgId !== want) problems.push(`msg id ${r.msgId} != ${want}`);
    if (r.msgId && ids.has(r.msgId)) problems.push(`duplicate msg id ${r.msgId}`);
    if (r.msgId) ids.add(r.msgId);
    const key = `${r.body.device}.${r.body.sensor}`;
    const list = bySensor.get(key) ?? [];
    list.push(r.body.seq);
    bySensor.set(key, list);
  }
  const ranges = new Map<string, { first: number; last: number; count: number }>();
  for (const [key, seqs] of bySensor) {
    seqs.sort((a, b) => a - b);
    for (let i = 1; i < seqs.length; i++) {
      if (seqs[i] !== seqs[i - 1]! + 1) problems.push(`${key}: seq gap ${seqs[i - 1]} → ${seqs[i]}`);
    }
    ranges.set(key, { first: seqs[0]!, last: seqs[seqs.length - 1]!, count: seqs.length });
  }
  return { problems, ranges };
}
