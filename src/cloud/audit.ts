/**
 * The fleet's completeness audit (`cloud gaps`): missing seq ranges per (device, sensor) from
 * the database, qualified by the ingest consumer's state.
 *
 * - **missing**: a seq between 1 and the highest stored seq of its sensor that is not in the
 *   table. When the consumer has nothing pending, such a reading is not waiting anywhere in
 *   the hub stream for this consumer: it never reached the hub (still buffered on the device's
 *   leaf — see `cloud devices` lag — or lost there), was removed from the hub stream (limits,
 *   deletion) before it was ingested, or was given up after max_deliver.
 * - **not yet ingested**: the consumer's `num_pending` (in the stream, not yet delivered) plus
 *   `num_ack_pending` (delivered, not yet acked). While that is > 0 the audit is provisional:
 *   those readings may fill some gaps (or raise a sensor's highest seq).
 */
import type { ConsumerReport } from "./ingest.js";
import type { GapsQuery, ReadingStore, SeqGap, SeriesSummary } from "./sinks/index.js";

export interface GapAudit {
  gaps: (SeqGap & { count: number })[];
  series: SeriesSummary[];
  totals: { sensors: number; sensorsWithGaps: number; stored: number; missing: number; gaps: number };
  /** The consumer's state, when one was named. */
  consumer?: ConsumerReport & { notYetIngested: number };
  /** True when the consumer has readings not yet ingested (or no consumer was asked). */
  provisional: boolean;
}

/** Runs the audit; `consumer` (the ingest queue's report) qualifies it. */
export async function auditGaps(store: ReadingStore, q: GapsQuery, consumer?: ConsumerReport): Promise<GapAudit> {
  const { gaps, series } = await store.gaps(q);
  const counted = gaps.map((g) => ({ ...g, count: g.to - g.from + 1 }));
  const withGaps = new Set(counted.map((g) => `${g.device}\u0000${g.sensor}`));
  const notYetIngested = consumer ? consumer.numPending + consumer.numAckPending : undefined;
  return {
    gaps: counted,
    series,
    totals: {
      sensors: series.length,
      sensorsWithGaps: withGaps.size,
      stored: series.reduce((n, s) => n + s.stored, 0),
      missing: counted.reduce((n, g) => n + g.count, 0),
      gaps: counted.length,
    },
    ...(consumer ? { consumer: { ...consumer, notYetIngested: notYetIngested! } } : {}),
    provisional: notYetIngested === undefined || notYetIngested > 0,
  };
}
